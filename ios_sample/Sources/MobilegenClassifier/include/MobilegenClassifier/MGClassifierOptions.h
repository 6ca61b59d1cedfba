// MGClassifierOptions.h: how an MGClassifier is set up.

#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

/** Where the model runs. */
typedef NS_ENUM(NSInteger, MGBackend) {
  /** The GPU (Metal) when it sets up, else the CPU; MGClassifier.fallbackReason says why it
   *  took the CPU. */
  MGBackendAuto = 0,
  /** The GPU only: creating the classifier fails when Metal is unavailable or fails. */
  MGBackendGPU = 1,
  /** The CPU only (the portable C++ kernels; int8 results are the same bits as on the GPU). */
  MGBackendCPU = 2,
} NS_SWIFT_NAME(Backend);

/**
 * The settings of a classifier, read once when it is created (later changes do not affect an
 * existing classifier, which keeps a copy).
 *
 * Thread safety: a plain value object; do not change one instance from several threads at once.
 */
NS_SWIFT_NAME(ClassifierOptions)
@interface MGClassifierOptions : NSObject <NSCopying>

/** The defaults: MGBackendAuto, 5 results, no pipeline cache. */
- (instancetype)init NS_DESIGNATED_INITIALIZER;

/** The backend to use. Default MGBackendAuto. */
@property (nonatomic) MGBackend backend;

/** How many recognitions the classify calls return at most (top-K), at least 1. Default 5. */
@property (nonatomic) NSUInteger maxResults;

/**
 * A directory for the Metal pipeline cache (an MTLBinaryArchive), created when missing, so that
 * later launches skip compiling the kernels. Best effort: a cache that cannot be read or written
 * is compiled anew. nil (the default): no cache. An app's Caches directory is a good place.
 */
@property (nonatomic, copy, nullable) NSURL *cacheDirectory;

@end

NS_ASSUME_NONNULL_END
