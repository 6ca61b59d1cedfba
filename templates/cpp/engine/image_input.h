// Image -> model input (Android Bitmap, iOS CGImage / CVPixelBuffer pixels), exactly as mobilegen's simulator prepares an image (mobilegen/inputs.py).
// Portable C++17 (no Android headers): the host tests run this same code against the simulator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "plan.h"

namespace mobilegen {
namespace io {

// 8-bit RGBA pixels, rows `stride` bytes apart: the memory of an Android ARGB_8888 Bitmap.
// Alpha is ignored (like Pillow's convert("RGB")); note that Android keeps such bitmaps
// premultiplied, so translucent pixels arrive darkened.
struct RgbaImage {
  const uint8_t* pixels;
  int32_t width;
  int32_t height;
  size_t stride;
};

// Converts an image to the graph input, step for step as the simulator does with Pillow:
//   1. 3-channel inputs take R, G, B; 1-channel inputs take the ITU-R 601-2 luma that Pillow's
//      convert("L") computes ((19595 R + 38470 G + 7471 B + 0x8000) >> 16);
//   2. Pillow's BILINEAR resize to the input's h x w: a separable triangle filter widened by the
//      scale factor when shrinking (so it antialiases), 22-bit fixed-point weights, horizontal
//      pass first, each pass rounded to 8 bits;
//   3. x = (pixel - mean) / std in float32;
//   4. float32 inputs take x; int8/uint8 inputs take round_half_away(x / scale) + zero_point,
//      clamped to the type's range.
// Keeps its buffers between calls: it allocates only when an image is larger than any before.
class ImagePreprocessor {
 public:
  // Writes tensor_bytes(input) bytes to `out`. Returns false and sets *error for an empty image,
  // an input that is not [1][h][w][1 or 3], a non-finite or zero std, or a short `out`.
  bool run(const RgbaImage& image, const TensorInfo& input, float mean, float std, void* out,
           size_t out_bytes, std::string* error);

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
