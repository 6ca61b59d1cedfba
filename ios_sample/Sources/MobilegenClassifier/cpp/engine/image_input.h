// Image -> model input (Android Bitmap, iOS CGImage / CVPixelBuffer pixels), exactly as mobilegen's
// simulator prepares an image (mobilegen/inputs.py), and model output -> top-K classes.
// Portable C++17 (no Android or Apple headers): the host tests run this same code against the
// simulator and against numpy references.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "plan.h"

namespace mobilegen {
namespace io {

// 8-bit 4-channel pixels, rows `stride` bytes apart: the memory of an Android ARGB_8888 Bitmap
// (R, G, B, A bytes), an iOS bitmap context or a 32-bit CVPixelBuffer (see PixelOrder).
// Alpha is ignored (like Pillow's convert("RGB")); note that Android and CoreGraphics keep such
// pixels premultiplied, so translucent pixels arrive darkened.
struct RgbaImage {
  const uint8_t* pixels;
  int32_t width;
  int32_t height;
  size_t stride;
};

// The byte order of RgbaImage's pixels: R, G, B, A (Android bitmaps, kCVPixelFormatType_32RGBA,
// CGBitmapContext with kCGBitmapByteOrder32Big) or B, G, R, A (kCVPixelFormatType_32BGRA, the
// camera's format).
enum class PixelOrder : int32_t { Rgba = 0, Bgra = 1 };

// How the stored pixels are to be turned for display: the EXIF orientation (TIFF tag 274), whose
// values are those of iOS's CGImagePropertyOrientation. The comment says where the stored 0th row
// and 0th column appear on the display.
enum class Orientation : int32_t {
  Up = 1,             // row 0 at the top, column 0 on the left: as stored
  UpMirrored = 2,     // top, right: flipped left-right
  Down = 3,           // bottom, right: turned 180 degrees
  DownMirrored = 4,   // bottom, left: flipped top-bottom
  LeftMirrored = 5,   // left, top: transposed
  Right = 6,          // right, top: turned 90 degrees clockwise
  RightMirrored = 7,  // right, bottom: transposed across the other diagonal
  Left = 8,           // left, bottom: turned 90 degrees counter-clockwise
};

// Whether `value` is an EXIF orientation (1..8).
bool is_orientation(int32_t value);

// The EXIF orientation of a UIImageOrientation value (Up 0, Down 1, Left 2, Right 3,
// UpMirrored 4, DownMirrored 5, LeftMirrored 6, RightMirrored 7), Apple's one-to-one mapping by
// name; false for anything else.
bool orientation_from_uikit(int32_t ui_image_orientation, Orientation* out);

// The displayed width and height of a width x height image under `orientation` (5 to 8 swap them).
void oriented_size(int32_t width, int32_t height, Orientation orientation, int32_t* out_width,
                   int32_t* out_height);

// Writes `image` as it is displayed under `orientation`, as packed R, G, B, A rows
// (out_width * 4 bytes each), alpha kept: the pixels ImagePreprocessor::run reads. Returns false
// and sets *error for an empty image, a bad stride or an invalid orientation.
bool orient_pixels(const RgbaImage& image, PixelOrder order, Orientation orientation,
                   std::vector<uint8_t>* out, int32_t* out_width, int32_t* out_height,
                   std::string* error);

// The class scores of a classifier's output tensor: float32 values as they are, 8-bit values
// dequantized as scale * (q - zero_point) in float (as the Android SDK does). `bytes` must be
// tensor_bytes(output). Returns false and sets *error otherwise.
bool output_scores(const TensorInfo& output, const void* data, size_t bytes,
                   std::vector<float>* scores, std::string* error);

// The indices of the min(k, n) best scores, best first: higher scores first, equal scores in
// index order, NaN below every number (so a NaN is returned only when fewer numbers remain).
void top_k(const float* scores, size_t n, size_t k, std::vector<int32_t>* out);

// Converts an image to the graph input, step for step as the simulator does with Pillow:
//   0. (the overload with an order and an orientation) the image as displayed, in R, G, B order
//      (orient_pixels); the first overload takes R, G, B, A pixels as they are stored;
//   1. 3-channel inputs take R, G, B; 1-channel inputs take the ITU-R 601-2 luma that Pillow's
//      convert("L") computes ((19595 R + 38470 G + 7471 B + 0x8000) >> 16);
//   2. Pillow's (>= 13) BILINEAR resize to the input's h x w: a separable triangle filter widened
//      by the scale factor when shrinking (so it antialiases), 22-bit fixed-point weights, each
//      pass rounded to 8 bits; the horizontal pass first unless the height shrinks by more than
//      twice as many pixels as the width (Pillow 13's order);
//   3. x = (pixel - mean) / std in float32;
//   4. float32 inputs take x; int8/uint8 inputs take round_half_away(x / scale) + zero_point,
//      clamped to the type's range.
// Keeps its buffers between calls: it allocates only when an image is larger than any before.
class ImagePreprocessor {
 public:
  // Writes tensor_bytes(input) bytes to `out`. Returns false and sets *error for an empty image,
  // an input that is not [1][h][w][1 or 3], a non-finite or zero std, or a short `out`.
  bool run(const RgbaImage& image, const TensorInfo& input, float mean, float std, void* out,
           size_t out_bytes, std::string* error) {
    return run(image, PixelOrder::Rgba, Orientation::Up, input, mean, std, out, out_bytes, error);
  }
  // The same for pixels in `order`, stored turned as `orientation` says (an invalid orientation
  // is an error).
  bool run(const RgbaImage& image, PixelOrder order, Orientation orientation, const TensorInfo& input,
           float mean, float std, void* out, size_t out_bytes, std::string* error);

 private:
  // One pass's filter: for output pixel i, `size` weights starting at source pixel `first`.
  struct Taps {
    int32_t ksize = 0;
    std::vector<int32_t> first, size, weights;  // weights: [out][ksize], 22-bit fixed point
  };
  void compute_taps(int32_t in_size, int32_t out_size, Taps* taps);

  std::vector<double> kernel_;            // one output pixel's weights before fixed point
  Taps horizontal_, vertical_;
  std::vector<uint8_t> source_, temp_, resized_;  // packed [h][w][c] 8-bit images
};

}  // namespace io
}  // namespace mobilegen
