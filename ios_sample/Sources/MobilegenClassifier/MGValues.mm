// MGValues.mm: the SDK's value classes (options, recognitions, tensor specs) and its errors.

#import <MobilegenClassifier/MGClassifierOptions.h>

#import "MGInternal.h"

NSErrorDomain const MGClassifierErrorDomain = @"MobilegenClassifier.ClassifierError";

NSError *MGMakeError(MGClassifierErrorCode code, NSString *message) {
  return [NSError errorWithDomain:MGClassifierErrorDomain
                             code:code
                         userInfo:@{NSLocalizedDescriptionKey : message}];
}

id _Nullable MGFail(NSError **error, MGClassifierErrorCode code, NSString *message) {
  if (error != NULL) *error = MGMakeError(code, message);
  return nil;
}

@implementation MGClassifierOptions

- (instancetype)init {
  self = [super init];
  if (self != nil) {
    _backend = MGBackendAuto;
    _maxResults = 5;
  }
  return self;
}

- (id)copyWithZone:(nullable NSZone *)zone {
  MGClassifierOptions *copy = [[[self class] allocWithZone:zone] init];
  copy.backend = _backend;
  copy.maxResults = _maxResults;
  copy.cacheDirectory = _cacheDirectory;
  return copy;
}

@end

@implementation MGRecognition

- (instancetype)initWithIndex:(NSInteger)index label:(NSString *)label score:(float)score {
  self = [super init];
  if (self != nil) {
    _index = index;
    _label = [label copy];
    _score = score;
  }
  return self;
}

- (NSString *)description {
  return [NSString stringWithFormat:@"<MGRecognition %ld %@: %g>", (long)_index, _label, (double)_score];
}

@end

@implementation MGTensorSpec

- (instancetype)initWithName:(NSString *)name
                       shape:(NSArray<NSNumber *> *)shape
                    dataType:(MGDataType)dataType
                       scale:(float)scale
                   zeroPoint:(NSInteger)zeroPoint
                   byteCount:(NSUInteger)byteCount {
  self = [super init];
  if (self != nil) {
    _name = [name copy];
    _shape = [shape copy];
    _dataType = dataType;
    _scale = scale;
    _zeroPoint = zeroPoint;
    _byteCount = byteCount;
  }
  return self;
}

- (NSString *)description {
  return [NSString stringWithFormat:@"<MGTensorSpec %@ %@ type %ld, %lu bytes>", _name,
                                    [_shape componentsJoinedByString:@"x"], (long)_dataType,
                                    (unsigned long)_byteCount];
}

@end
