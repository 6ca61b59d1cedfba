// Stub for syntax checks on Linux (tests/objc.py): CVPixelBuffer as the generated sources use it.
// Declarations only.
#pragma once

#import <CoreFoundation/CoreFoundation.h>

#include <stddef.h>
#include <stdint.h>

CF_IMPLICIT_BRIDGING_ENABLED
CF_ASSUME_NONNULL_BEGIN

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t CVReturn;
enum { kCVReturnSuccess = 0, kCVReturnError = -6660, kCVReturnInvalidArgument = -6661 };

typedef struct CF_BRIDGED_TYPE(id) __CVBuffer *CVBufferRef;
typedef CVBufferRef CVImageBufferRef;
typedef CVImageBufferRef CVPixelBufferRef;

enum {
  kCVPixelFormatType_32ARGB = 0x00000020,
  kCVPixelFormatType_24RGB = 0x00000018,
  kCVPixelFormatType_32BGRA = 'BGRA',
  kCVPixelFormatType_32ABGR = 'ABGR',
  kCVPixelFormatType_32RGBA = 'RGBA',
  kCVPixelFormatType_OneComponent8 = 'L008',
  kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange = '420v',
  kCVPixelFormatType_420YpCbCr8BiPlanarFullRange = '420f',
};

typedef CF_OPTIONS(uint64_t, CVPixelBufferLockFlags){
    kCVPixelBufferLock_ReadOnly = 0x00000001,
};

CVPixelBufferRef _Nullable CVPixelBufferRetain(CVPixelBufferRef _Nullable texture);
void CVPixelBufferRelease(CVPixelBufferRef _Nullable texture);
CVReturn CVPixelBufferLockBaseAddress(CVPixelBufferRef pixelBuffer, CVPixelBufferLockFlags lockFlags);
CVReturn CVPixelBufferUnlockBaseAddress(CVPixelBufferRef pixelBuffer, CVPixelBufferLockFlags unlockFlags);
size_t CVPixelBufferGetWidth(CVPixelBufferRef pixelBuffer);
size_t CVPixelBufferGetHeight(CVPixelBufferRef pixelBuffer);
OSType CVPixelBufferGetPixelFormatType(CVPixelBufferRef pixelBuffer);
void *_Nullable CVPixelBufferGetBaseAddress(CVPixelBufferRef pixelBuffer);
size_t CVPixelBufferGetBytesPerRow(CVPixelBufferRef pixelBuffer);
bool CVPixelBufferIsPlanar(CVPixelBufferRef pixelBuffer);
size_t CVPixelBufferGetPlaneCount(CVPixelBufferRef pixelBuffer);

#ifdef __cplusplus
}
#endif

CF_ASSUME_NONNULL_END
CF_IMPLICIT_BRIDGING_DISABLED
