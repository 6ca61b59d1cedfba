#import "ViewController.h"

#import <PhotosUI/PhotosUI.h>
#import <MobilegenClassifier/MobilegenClassifier.h>

// The model this app was generated for (mobilegen 0.1.0, int8 kernels).
static NSString *const kModelName = @"model.tflite";
// Results shown: the top five.
static const NSUInteger kMaxResults = 5;
// The folder under Documents/ that holds one subfolder per tensor dump (what `mobilegen pull
// --target ios` copies with devicectl, and what the Files app shows with file sharing on).
static NSString *const kDumpsFolder = @"mobilegen-dumps";

@interface ViewController () <PHPickerViewControllerDelegate>
@property (nonatomic, strong, nullable) MGClassifier *classifier;
@property (nonatomic, strong, nullable) UIImage *image;
@property (nonatomic, strong) dispatch_queue_t inferenceQueue;
@property (nonatomic, strong) UIImageView *imageView;
@property (nonatomic, strong) UISegmentedControl *backendSwitch;
@property (nonatomic, strong) UISwitch *dumpSwitch;
@property (nonatomic, strong) UILabel *dumpLabel;
@property (nonatomic, strong) UILabel *backendLabel;
@property (nonatomic, strong) UILabel *resultsLabel;
@property (nonatomic, strong) UILabel *timeLabel;
@property (nonatomic, strong) UILabel *errorLabel;
@end

@implementation ViewController

- (void)viewDidLoad {
  [super viewDidLoad];
  self.title = [[NSBundle mainBundle] objectForInfoDictionaryKey:@"CFBundleDisplayName"];
  self.view.backgroundColor = [UIColor systemBackgroundColor];
  // Inference runs off the main thread; the classifier serializes calls itself, this queue keeps
  // results in order.
  self.inferenceQueue = dispatch_queue_create("classifier", DISPATCH_QUEUE_SERIAL);
  [self buildViews];

  NSString *path = [[NSBundle mainBundle] pathForResource:@"sample" ofType:@"png"];
  self.image = path ? [UIImage imageWithContentsOfFile:path] : nil;
  self.imageView.image = self.image;
  [self createClassifier];
  [self classifyCurrentImage];
}

#pragma mark - Views

- (UILabel *)labelWithFont:(UIFont *)font {
  UILabel *label = [[UILabel alloc] init];
  label.font = font;
  label.numberOfLines = 0;
  return label;
}

- (void)buildViews {
  self.imageView = [[UIImageView alloc] init];
  self.imageView.contentMode = UIViewContentModeScaleAspectFit;
  self.imageView.backgroundColor = [UIColor secondarySystemBackgroundColor];
  [self.imageView.heightAnchor constraintEqualToConstant:240].active = YES;

  self.backendSwitch = [[UISegmentedControl alloc] initWithItems:@[ @"GPU", @"CPU" ]];
  self.backendSwitch.selectedSegmentIndex = 0;
  [self.backendSwitch addTarget:self action:@selector(backendChanged:) forControlEvents:UIControlEventValueChanged];

  // "Dump tensors": each classification also writes every tensor (runs slower).
  self.dumpSwitch = [[UISwitch alloc] init];
  self.dumpSwitch.on = NO;
  [self.dumpSwitch addTarget:self action:@selector(dumpChanged:) forControlEvents:UIControlEventValueChanged];
  UILabel *dumpTitle = [self labelWithFont:[UIFont preferredFontForTextStyle:UIFontTextStyleBody]];
  dumpTitle.text = @"Dump tensors";
  UIStackView *dumpRow = [[UIStackView alloc] initWithArrangedSubviews:@[ dumpTitle, self.dumpSwitch ]];
  dumpRow.axis = UILayoutConstraintAxisHorizontal;
  dumpRow.alignment = UIStackViewAlignmentCenter;
  dumpRow.spacing = 12;

  UIButton *pick = [UIButton buttonWithType:UIButtonTypeSystem];
  [pick setTitle:@"Choose Photo" forState:UIControlStateNormal];
  [pick addTarget:self action:@selector(choosePhoto:) forControlEvents:UIControlEventTouchUpInside];

  UILabel *model = [self labelWithFont:[UIFont preferredFontForTextStyle:UIFontTextStyleCaption1]];
  model.text = kModelName;
  model.textColor = [UIColor secondaryLabelColor];
  self.backendLabel = [self labelWithFont:[UIFont preferredFontForTextStyle:UIFontTextStyleFootnote]];
  self.resultsLabel = [self labelWithFont:[UIFont monospacedSystemFontOfSize:15 weight:UIFontWeightRegular]];
  self.timeLabel = [self labelWithFont:[UIFont preferredFontForTextStyle:UIFontTextStyleFootnote]];
  self.dumpLabel = [self labelWithFont:[UIFont preferredFontForTextStyle:UIFontTextStyleFootnote]];
  self.dumpLabel.textColor = [UIColor secondaryLabelColor];
  self.errorLabel = [self labelWithFont:[UIFont preferredFontForTextStyle:UIFontTextStyleFootnote]];
  self.errorLabel.textColor = [UIColor systemRedColor];

  UIStackView *stack = [[UIStackView alloc] initWithArrangedSubviews:@[
    self.imageView, self.backendSwitch, dumpRow, pick, model, self.backendLabel, self.resultsLabel, self.timeLabel,
    self.dumpLabel, self.errorLabel
  ]];
  stack.axis = UILayoutConstraintAxisVertical;
  stack.spacing = 12;
  stack.translatesAutoresizingMaskIntoConstraints = NO;

  UIScrollView *scroll = [[UIScrollView alloc] init];
  scroll.translatesAutoresizingMaskIntoConstraints = NO;
  [scroll addSubview:stack];
  [self.view addSubview:scroll];
  UILayoutGuide *safe = self.view.safeAreaLayoutGuide;
  [NSLayoutConstraint activateConstraints:@[
    [scroll.topAnchor constraintEqualToAnchor:safe.topAnchor],
    [scroll.bottomAnchor constraintEqualToAnchor:safe.bottomAnchor],
    [scroll.leadingAnchor constraintEqualToAnchor:safe.leadingAnchor],
    [scroll.trailingAnchor constraintEqualToAnchor:safe.trailingAnchor],
    // The stack's edges against the scroll view's give its content size; its width follows the screen.
    [stack.topAnchor constraintEqualToAnchor:scroll.topAnchor constant:16],
    [stack.bottomAnchor constraintEqualToAnchor:scroll.bottomAnchor constant:-16],
    [stack.leadingAnchor constraintEqualToAnchor:scroll.leadingAnchor constant:16],
    [stack.trailingAnchor constraintEqualToAnchor:scroll.trailingAnchor constant:-16],
    [stack.widthAnchor constraintEqualToAnchor:scroll.widthAnchor constant:-32],
  ]];
}

#pragma mark - Classifier

- (MGBackend)selectedBackend {
  return self.backendSwitch.selectedSegmentIndex == 0 ? MGBackendGPU : MGBackendCPU;
}

/// (Re)creates the classifier on the selected backend; the old one is released once the
/// inference queue no longer uses it.
- (void)createClassifier {
  MGClassifierOptions *options = [[MGClassifierOptions alloc] init];
  options.backend = [self selectedBackend];
  options.maxResults = kMaxResults;
  // Compiled GPU pipelines are kept here, so the next launch starts faster.
  NSString *caches = NSSearchPathForDirectoriesInDomains(NSCachesDirectory, NSUserDomainMask, YES).firstObject;
  options.cacheDirectory = caches ? [NSURL fileURLWithPath:caches isDirectory:YES] : nil;
  NSError *error = nil;
  self.classifier = [[MGClassifier alloc] initWithOptions:options error:&error];
  if (self.classifier == nil) {
    self.backendLabel.text = @"No classifier";
    self.resultsLabel.text = nil;
    self.timeLabel.text = nil;
    [self showError:error];
    return;
  }
  NSString *backend = self.classifier.backend == MGBackendGPU
      ? [NSString stringWithFormat:@"GPU (%@)", self.classifier.deviceName]
      : @"CPU";
  if (self.classifier.fallbackReason != nil) {
    backend = [backend stringByAppendingFormat:@", GPU not used: %@", self.classifier.fallbackReason];
  }
  self.backendLabel.text = [@"Backend: " stringByAppendingString:backend];
  [self showError:nil];
}

- (void)classifyCurrentImage {
  MGClassifier *classifier = self.classifier;
  UIImage *image = self.image;
  if (classifier == nil) {
    return;
  }
  if (image == nil) {
    self.errorLabel.text = @"The sample picture is missing from the app bundle.";
    return;
  }
  NSURL *dumpDirectory = nil;
  if (self.dumpSwitch.on) {
    NSError *error = nil;
    dumpDirectory = [self newDumpDirectory:&error];
    if (dumpDirectory == nil) {
      [self showError:error];
      return;
    }
  }
  self.resultsLabel.text = @"Classifying...";
  self.dumpLabel.text = nil;
  __weak ViewController *weakSelf = self;
  dispatch_async(self.inferenceQueue, ^{
    NSError *error = nil;
    // With a dump directory, the same classification writes every tensor there too.
    NSArray<MGRecognition *> *results = dumpDirectory != nil
        ? [classifier classifyImage:image dumpDirectory:(NSURL *)dumpDirectory error:&error]
        : [classifier classifyImage:image error:&error];
    double milliseconds = classifier.lastInferenceTimeMs;
    dispatch_async(dispatch_get_main_queue(), ^{
      [weakSelf showResults:results milliseconds:milliseconds error:error];
      [weakSelf showDump:results != nil ? dumpDirectory : nil];
    });
  });
}

/// A new folder for one dump, Documents/mobilegen-dumps/<yyyyMMdd-HHmmss> ("-2", "-3", ...
/// appended when two runs share a second), so names sort by time and `mobilegen pull` takes the
/// latest. The classifier creates it. nil and *error when there is no Documents folder.
- (nullable NSURL *)newDumpDirectory:(NSError **)error {
  NSString *documentsPath = NSSearchPathForDirectoriesInDomains(NSDocumentDirectory, NSUserDomainMask, YES).firstObject;
  if (documentsPath == nil) {
    if (error != NULL) {
      *error = [NSError errorWithDomain:NSCocoaErrorDomain
                                   code:NSFileNoSuchFileError
                               userInfo:@{NSLocalizedDescriptionKey : @"The app has no Documents folder."}];
    }
    return nil;
  }
  NSDateFormatter *format = [[NSDateFormatter alloc] init];
  format.locale = [NSLocale localeWithLocaleIdentifier:@"en_US_POSIX"];
  format.dateFormat = @"yyyyMMdd-HHmmss";
  NSString *stamp = [format stringFromDate:[NSDate date]];
  NSURL *documents = [NSURL fileURLWithPath:(NSString *)documentsPath isDirectory:YES];
  NSURL *root = [documents URLByAppendingPathComponent:kDumpsFolder isDirectory:YES];
  NSURL *folder = [root URLByAppendingPathComponent:stamp isDirectory:YES];
  for (NSUInteger n = 2; [[NSFileManager defaultManager] fileExistsAtPath:folder.path]; ++n) {
    folder = [root URLByAppendingPathComponent:[NSString stringWithFormat:@"%@-%lu", stamp, (unsigned long)n]
                                   isDirectory:YES];
  }
  return folder;
}

/// Where the last dump went and how to fetch it; nothing without one.
- (void)showDump:(nullable NSURL *)directory {
  if (directory == nil) {
    self.dumpLabel.text = nil;
    return;
  }
  NSString *bundle = [NSBundle mainBundle].bundleIdentifier ?: @"<bundle id>";
  self.dumpLabel.text = [NSString
      stringWithFormat:@"Tensors dumped to Documents/%@/%@\nOn a Mac: mobilegen pull DIR --target ios --package %@ "
                       @"(or the Files app: On My iPhone > %@)",
                       kDumpsFolder, directory.lastPathComponent, bundle,
                       [[NSBundle mainBundle] objectForInfoDictionaryKey:@"CFBundleDisplayName"] ?: @"this app"];
}

- (void)showResults:(nullable NSArray<MGRecognition *> *)results milliseconds:(double)milliseconds error:(nullable NSError *)error {
  if (results == nil) {
    self.resultsLabel.text = nil;
    self.timeLabel.text = nil;
    [self showError:error];
    return;
  }
  NSMutableArray<NSString *> *lines = [NSMutableArray array];
  for (MGRecognition *r in results) {
    [lines addObject:[NSString stringWithFormat:@"%6.3f  %@", r.score, r.label]];
  }
  self.resultsLabel.text = [lines componentsJoinedByString:@"\n"];
  self.timeLabel.text = [NSString stringWithFormat:@"Inference: %.1f ms", milliseconds];
  [self showError:nil];
}

- (void)showError:(nullable NSError *)error {
  self.errorLabel.text = error ? [NSString stringWithFormat:@"%@ (%@ %ld)", error.localizedDescription, error.domain, (long)error.code] : nil;
}

#pragma mark - Actions

- (void)backendChanged:(UISegmentedControl *)sender {
  [self createClassifier];
  [self classifyCurrentImage];
}

// Turning the switch on dumps the picture shown right away.
- (void)dumpChanged:(UISwitch *)sender {
  [self classifyCurrentImage];
}

- (void)choosePhoto:(UIButton *)sender {
  // The system picker runs out of process: no photo library permission is needed.
  PHPickerConfiguration *configuration = [[PHPickerConfiguration alloc] init];
  configuration.filter = [PHPickerFilter imagesFilter];
  configuration.selectionLimit = 1;
  PHPickerViewController *picker = [[PHPickerViewController alloc] initWithConfiguration:configuration];
  picker.delegate = self;
  [self presentViewController:picker animated:YES completion:nil];
}

- (void)picker:(PHPickerViewController *)picker didFinishPicking:(NSArray<PHPickerResult *> *)results {
  [picker dismissViewControllerAnimated:YES completion:nil];
  NSItemProvider *provider = results.firstObject.itemProvider;
  if (provider == nil) {
    return;
  }
  if (![provider canLoadObjectOfClass:[UIImage class]]) {
    self.errorLabel.text = @"This item cannot be read as a picture.";
    return;
  }
  __weak ViewController *weakSelf = self;
  [provider loadObjectOfClass:[UIImage class] completionHandler:^(id<NSItemProviderReading> object, NSError *error) {
    dispatch_async(dispatch_get_main_queue(), ^{
      ViewController *strongSelf = weakSelf;
      if (strongSelf == nil) {
        return;
      }
      if (![(NSObject *)object isKindOfClass:[UIImage class]]) {
        [strongSelf showError:error];
        return;
      }
      strongSelf.image = (UIImage *)object;
      strongSelf.imageView.image = strongSelf.image;
      [strongSelf classifyCurrentImage];
    });
  }];
}

@end
