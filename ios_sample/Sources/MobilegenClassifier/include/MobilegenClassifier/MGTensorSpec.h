// MGTensorSpec.h: a model input or output as the raw-tensor calls see it.

#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

/** The element type of a tensor. */
typedef NS_ENUM(NSInteger, MGDataType) {
  /** 32-bit IEEE float, native byte order. */
  MGDataTypeFloat32 = 0,
  /** Signed 8-bit integer (quantized: real = scale * (q - zeroPoint)). */
  MGDataTypeInt8 = 1,
  /** Unsigned 8-bit integer (quantized: real = scale * (q - zeroPoint)). */
  MGDataTypeUInt8 = 2,
} NS_SWIFT_NAME(DataType);

/**
 * A graph input or output, as TensorFlow Lite describes it: the data runWithInputs:error: takes
 * and returns is `byteCount` bytes of `dataType` values in NHWC (row-major) order.
 *
 * Thread safety: immutable; safe to share between threads.
 */
NS_SWIFT_NAME(TensorSpec)
@interface MGTensorSpec : NSObject

/** Made by MGClassifier only. */
- (instancetype)init NS_UNAVAILABLE;
/** Made by MGClassifier only. */
+ (instancetype)new NS_UNAVAILABLE;

/** The tensor's name in the model. */
@property (nonatomic, readonly, copy) NSString *name;

/** The dimensions, outermost first (e.g. 1, 224, 224, 3). */
@property (nonatomic, readonly, copy) NSArray<NSNumber *> *shape;

/** The element type. */
@property (nonatomic, readonly) MGDataType dataType;

/** The quantization scale of an 8-bit tensor; 0 for float tensors. */
@property (nonatomic, readonly) float scale;

/** The quantization zero point of an 8-bit tensor; 0 for float tensors. */
@property (nonatomic, readonly) NSInteger zeroPoint;

/** The size of the tensor's data in bytes. */
@property (nonatomic, readonly) NSUInteger byteCount;

@end

NS_ASSUME_NONNULL_END
