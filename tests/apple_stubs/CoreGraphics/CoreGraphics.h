// Stub for syntax checks on Linux (tests/objc.py): the CoreGraphics types and functions the
// generated sources use (geometry, CGImage, bitmap contexts, color spaces). Declarations only.
#pragma once

#import <Foundation/Foundation.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

CF_IMPLICIT_BRIDGING_ENABLED
CF_ASSUME_NONNULL_BEGIN

#ifdef __cplusplus
extern "C" {
#endif

// CGFloat comes from GNUstep's NSObjCRuntime.h.
struct CGPoint { CGFloat x, y; };
typedef struct CGPoint CGPoint;
struct CGSize { CGFloat width, height; };
typedef struct CGSize CGSize;
struct CGRect { CGPoint origin; CGSize size; };
typedef struct CGRect CGRect;
struct CGAffineTransform { CGFloat a, b, c, d, tx, ty; };
typedef struct CGAffineTransform CGAffineTransform;

extern const CGPoint CGPointZero;
extern const CGSize CGSizeZero;
extern const CGRect CGRectZero;
extern const CGAffineTransform CGAffineTransformIdentity;
CGPoint CGPointMake(CGFloat x, CGFloat y);
CGSize CGSizeMake(CGFloat width, CGFloat height);
CGRect CGRectMake(CGFloat x, CGFloat y, CGFloat width, CGFloat height);
CGFloat CGRectGetWidth(CGRect rect);
CGFloat CGRectGetHeight(CGRect rect);

typedef struct CF_BRIDGED_TYPE(id) CGImage *CGImageRef;
typedef struct CF_BRIDGED_TYPE(id) CGColorSpace *CGColorSpaceRef;
typedef struct CF_BRIDGED_TYPE(id) CGContext *CGContextRef;
typedef struct CF_BRIDGED_TYPE(id) CGColor *CGColorRef;
typedef struct CF_BRIDGED_TYPE(id) CGDataProvider *CGDataProviderRef;

typedef CF_ENUM(uint32_t, CGImageAlphaInfo){
    kCGImageAlphaNone,
    kCGImageAlphaPremultipliedLast,
    kCGImageAlphaPremultipliedFirst,
    kCGImageAlphaLast,
    kCGImageAlphaFirst,
    kCGImageAlphaNoneSkipLast,
    kCGImageAlphaNoneSkipFirst,
    kCGImageAlphaOnly,
};
typedef CF_OPTIONS(uint32_t, CGBitmapInfo){
    kCGBitmapAlphaInfoMask = 0x1F,
    kCGBitmapFloatComponents = (1 << 8),
    kCGBitmapByteOrderMask = 0x7000,
    kCGBitmapByteOrderDefault = (0 << 12),
    kCGBitmapByteOrder16Little = (1 << 12),
    kCGBitmapByteOrder32Little = (2 << 12),
    kCGBitmapByteOrder16Big = (3 << 12),
    kCGBitmapByteOrder32Big = (4 << 12),
};
typedef CF_ENUM(int32_t, CGInterpolationQuality){
    kCGInterpolationDefault = 0,
    kCGInterpolationNone = 1,
    kCGInterpolationLow = 2,
    kCGInterpolationMedium = 4,
    kCGInterpolationHigh = 3,
};
typedef CF_ENUM(int32_t, CGBlendMode){
    kCGBlendModeNormal = 0,
    kCGBlendModeCopy = 17,
};

extern const CFStringRef kCGColorSpaceSRGB;
extern const CFStringRef kCGColorSpaceGenericRGB;

CGColorSpaceRef _Nullable CGColorSpaceCreateWithName(CFStringRef _Nullable name);
CGColorSpaceRef _Nullable CGColorSpaceCreateDeviceRGB(void);
void CGColorSpaceRelease(CGColorSpaceRef _Nullable space);

size_t CGImageGetWidth(CGImageRef _Nullable image);
size_t CGImageGetHeight(CGImageRef _Nullable image);
size_t CGImageGetBitsPerComponent(CGImageRef _Nullable image);
size_t CGImageGetBitsPerPixel(CGImageRef _Nullable image);
size_t CGImageGetBytesPerRow(CGImageRef _Nullable image);
CGBitmapInfo CGImageGetBitmapInfo(CGImageRef _Nullable image);
CGImageAlphaInfo CGImageGetAlphaInfo(CGImageRef _Nullable image);
CGColorSpaceRef _Nullable CGImageGetColorSpace(CGImageRef _Nullable image);
CGImageRef _Nullable CGImageRetain(CGImageRef _Nullable image);
void CGImageRelease(CGImageRef _Nullable image);

CGContextRef _Nullable CGBitmapContextCreate(void *_Nullable data, size_t width, size_t height,
                                             size_t bitsPerComponent, size_t bytesPerRow,
                                             CGColorSpaceRef _Nullable space, uint32_t bitmapInfo);
void *_Nullable CGBitmapContextGetData(CGContextRef _Nullable context);
CGImageRef _Nullable CGBitmapContextCreateImage(CGContextRef _Nullable context);
void CGContextDrawImage(CGContextRef _Nullable c, CGRect rect, CGImageRef _Nullable image);
void CGContextSetInterpolationQuality(CGContextRef _Nullable c, CGInterpolationQuality quality);
void CGContextSetBlendMode(CGContextRef _Nullable c, CGBlendMode mode);
void CGContextRelease(CGContextRef _Nullable c);

#ifdef __cplusplus
}
#endif

CF_ASSUME_NONNULL_END
CF_IMPLICIT_BRIDGING_DISABLED
