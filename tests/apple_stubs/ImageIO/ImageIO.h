// Stub for syntax checks on Linux (tests/objc.py): ImageIO's CGImagePropertyOrientation, the EXIF
// orientation values (TIFF tag 274). Declarations only.
#pragma once

#import <CoreGraphics/CoreGraphics.h>

typedef CF_CLOSED_ENUM(uint32_t, CGImagePropertyOrientation){
    kCGImagePropertyOrientationUp = 1,             // 0th row at top, 0th column on left
    kCGImagePropertyOrientationUpMirrored = 2,     // 0th row at top, 0th column on right
    kCGImagePropertyOrientationDown = 3,           // 0th row at bottom, 0th column on right
    kCGImagePropertyOrientationDownMirrored = 4,   // 0th row at bottom, 0th column on left
    kCGImagePropertyOrientationLeftMirrored = 5,   // 0th row on left, 0th column at top
    kCGImagePropertyOrientationRight = 6,          // 0th row on right, 0th column at top
    kCGImagePropertyOrientationRightMirrored = 7,  // 0th row on right, 0th column on bottom
    kCGImagePropertyOrientationLeft = 8,           // 0th row on left, 0th column at bottom
};
