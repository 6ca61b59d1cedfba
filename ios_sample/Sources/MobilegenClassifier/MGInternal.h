// MGInternal.h: what the SDK's own .mm files share (not a public header).

#import <MobilegenClassifier/MGErrors.h>
#import <MobilegenClassifier/MGRecognition.h>
#import <MobilegenClassifier/MGTensorSpec.h>

NS_ASSUME_NONNULL_BEGIN

@interface MGRecognition ()
- (instancetype)initWithIndex:(NSInteger)index label:(NSString *)label score:(float)score NS_DESIGNATED_INITIALIZER;
@end

@interface MGTensorSpec ()
- (instancetype)initWithName:(NSString *)name
                       shape:(NSArray<NSNumber *> *)shape
                    dataType:(MGDataType)dataType
                       scale:(float)scale
                   zeroPoint:(NSInteger)zeroPoint
                   byteCount:(NSUInteger)byteCount NS_DESIGNATED_INITIALIZER;
@end

/** An MGClassifierErrorDomain error with `message` as its localized description. */
FOUNDATION_EXTERN NSError *MGMakeError(MGClassifierErrorCode code, NSString *message);

/** Sets *error (when error is not NULL) to MGMakeError(code, message); returns nil, for
 *  `return MGFail(...)` from methods that return an object. */
FOUNDATION_EXTERN id _Nullable MGFail(NSError **error, MGClassifierErrorCode code, NSString *message);

NS_ASSUME_NONNULL_END
