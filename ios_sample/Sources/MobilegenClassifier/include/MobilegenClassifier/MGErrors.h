// MGErrors.h: the errors of the classifier SDK.

#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

/**
 * The domain of every NSError this SDK returns. The error's code is an MGClassifierErrorCode and
 * its localizedDescription says what went wrong, with the engine's own message.
 *
 * Swift imports the codes as `ClassifierError`, an `Error` type to catch:
 * `catch ClassifierError.invalidImage { ... }`.
 */
FOUNDATION_EXPORT NSErrorDomain const MGClassifierErrorDomain;

/** The codes of MGClassifierErrorDomain errors. 1 to 7 are the C++ engine's mobilegen::Status values. */
typedef NS_ERROR_ENUM(MGClassifierErrorDomain, MGClassifierErrorCode) {
  /** The weights (model.mgw) do not belong to this SDK's model, or its labels do not match it. */
  MGClassifierErrorInvalidModel = 1,
  /** An input of the wrong size or type. */
  MGClassifierErrorInvalidInput = 2,
  /** MGBackendGPU was asked for and the device has no usable Metal GPU. */
  MGClassifierErrorGPUUnavailable = 3,
  /** The Metal backend failed to set up (MGBackendGPU) or to run. */
  MGClassifierErrorGPUError = 4,
  /** An argument out of its range: an unknown backend or orientation, a wrong number of tensors. */
  MGClassifierErrorInvalidArgument = 5,
  /** A file could not be read or written (the bundle's resources, a dump directory). */
  MGClassifierErrorIO = 6,
  /** Too little memory for the model or the image. */
  MGClassifierErrorOutOfMemory = 7,
  /** An image the SDK cannot read: a pixel format other than 32-bit BGRA or RGBA, a UIImage
   *  without a CGImage (CIImage-backed), an empty image. */
  MGClassifierErrorInvalidImage = 8,
  /** The bundle lacks model.mgw, labels.json or tensors.json. */
  MGClassifierErrorResourceMissing = 9,
} NS_SWIFT_NAME(ClassifierError);

NS_ASSUME_NONNULL_END
