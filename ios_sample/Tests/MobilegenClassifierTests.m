// The engine on this device against mobilegen's simulator: golden_input<n>.bin (input 0: the
// sample picture, preprocessed) must give golden_output<n>.bin for every graph output, which the
// simulator computed when the project was generated (mobilegen 0.1.0, int8 kernels).
// Integer kernels are bit-exact: both backends must reproduce every output byte for byte.
#import <XCTest/XCTest.h>

#import <MobilegenClassifier/MobilegenClassifier.h>

@interface MobilegenClassifierTests : XCTestCase
@end

@implementation MobilegenClassifierTests

- (void)testGPUMatchesSimulator {
  [self checkGoldenOnBackend:MGBackendGPU];
}

- (void)testCPUMatchesSimulator {
  [self checkGoldenOnBackend:MGBackendCPU];
}

/// Auto names the backend it took and, when it left the GPU, why.
- (void)testAutoReportsItsBackend {
  NSError *error = nil;
  MGClassifier *classifier = [[MGClassifier alloc] initWithOptions:nil error:&error];
  XCTAssertNotNil(classifier, @"%@", error);
  XCTAssertNotEqual(classifier.backend, MGBackendAuto);
  if (classifier.backend == MGBackendGPU) {
    XCTAssertNil(classifier.fallbackReason);
    XCTAssertGreaterThan(classifier.deviceName.length, 0u);
  } else {
    XCTAssertGreaterThan(classifier.fallbackReason.length, 0u);
  }
  XCTAssertEqual(classifier.labels.count, (NSUInteger)10);
}

- (NSData *)golden:(NSString *)name {
  NSURL *url = [[NSBundle bundleForClass:[self class]] URLForResource:name withExtension:@"bin"];
  XCTAssertNotNil(url, @"%@.bin is missing from the test bundle", name);
  return url ? [NSData dataWithContentsOfURL:url] : [NSData data];
}

- (void)checkGoldenOnBackend:(MGBackend)backend {
  MGClassifierOptions *options = [[MGClassifierOptions alloc] init];
  options.backend = backend;
  NSError *error = nil;
  MGClassifier *classifier = [[MGClassifier alloc] initWithOptions:options error:&error];
  if (classifier == nil && backend == MGBackendGPU && [error.domain isEqualToString:MGClassifierErrorDomain] &&
      error.code == MGClassifierErrorGPUUnavailable) {
    XCTSkip(@"no Metal device: %@", error.localizedDescription);
  }
  XCTAssertNotNil(classifier, @"%@", error);
  XCTAssertEqual(classifier.backend, backend);

  NSMutableArray<NSData *> *inputs = [NSMutableArray array];
  for (NSUInteger n = 0; n < classifier.inputs.count; n++) {
    NSData *input = [self golden:[NSString stringWithFormat:@"golden_input%lu", (unsigned long)n]];
    XCTAssertEqual(input.length, classifier.inputs[n].byteCount);
    [inputs addObject:input];
  }
  NSArray<NSData *> *outputs = [classifier runWithInputs:inputs error:&error];
  XCTAssertNotNil(outputs, @"%@", error);
  XCTAssertEqual(outputs.count, classifier.outputs.count);
  for (NSUInteger n = 0; n < outputs.count; n++) {
    NSData *expected = [self golden:[NSString stringWithFormat:@"golden_output%lu", (unsigned long)n]];
    [self checkOutput:outputs[n] expected:expected spec:classifier.outputs[n]
                 what:[NSString stringWithFormat:@"%@ output %lu", backend == MGBackendGPU ? @"GPU" : @"CPU", (unsigned long)n]];
  }
}

- (void)checkOutput:(NSData *)actual expected:(NSData *)expected spec:(MGTensorSpec *)spec what:(NSString *)what {
  XCTAssertEqual(expected.length, spec.byteCount, @"%@", what);
  XCTAssertEqualObjects(actual, expected, @"%@ differs from the simulator", what);
}

@end
