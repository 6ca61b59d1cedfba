// MGRecognition.h: one class of a classification result.

#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

/**
 * One of the top-K classes a classify call returns, best first.
 *
 * Thread safety: immutable; safe to share between threads.
 */
NS_SWIFT_NAME(Recognition)
@interface MGRecognition : NSObject

/** Made by MGClassifier only. */
- (instancetype)init NS_UNAVAILABLE;
/** Made by MGClassifier only. */
+ (instancetype)new NS_UNAVAILABLE;

/** The class index in the model's output. */
@property (nonatomic, readonly) NSInteger index;

/** The class's label (from labels.json). */
@property (nonatomic, readonly, copy) NSString *label;

/** The model's score for the class: the output value, dequantized for 8-bit outputs
 *  (scale * (q - zeroPoint)). */
@property (nonatomic, readonly) float score;

@end

NS_ASSUME_NONNULL_END
