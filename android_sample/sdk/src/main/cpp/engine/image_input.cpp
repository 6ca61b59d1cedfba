#include "image_input.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mobilegen {
namespace io {
namespace {

// Pillow's resampling arithmetic (libImaging/Resample.c): weights carry 22 fractional bits and
// every pass starts from half an LSB, so `>> kPrecisionBits` rounds to nearest.
constexpr int kPrecisionBits = 32 - 8 - 2;

double triangle(double x) {  // Pillow's bilinear filter, support 1
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(std::min(std::max(v, 0), 255));
}

// out[y][x][ch] = sum_k in[y][first[x] + k][ch] * w[x][k] over rows [row0, row0 + rows) of `in`.
void resample_horizontal(const uint8_t* in, int32_t in_w, int32_t row0, int32_t rows, int32_t c,
                         int32_t out_w, const int32_t* first, const int32_t* size,
                         const int32_t* weights, int32_t ksize, uint8_t* out) {
  for (int32_t y = 0; y < rows; ++y) {
    const uint8_t* src = in + static_cast<size_t>(row0 + y) * in_w * c;
    uint8_t* dst = out + static_cast<size_t>(y) * out_w * c;
    for (int32_t x = 0; x < out_w; ++x) {
      const int32_t* w = weights + static_cast<size_t>(x) * ksize;
      for (int32_t ch = 0; ch < c; ++ch) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int32_t k = 0; k < size[x]; ++k) acc += src[(first[x] + k) * c + ch] * w[k];
        dst[x * c + ch] = clip8(acc);
      }
    }
  }
}

// out[y][x][ch] = sum_k in[first[y] + k][x][ch] * w[y][k].
void resample_vertical(const uint8_t* in, int32_t w_px, int32_t c, int32_t out_h,
                       const int32_t* first, const int32_t* size, const int32_t* weights,
                       int32_t ksize, uint8_t* out) {
  const size_t row = static_cast<size_t>(w_px) * c;
  for (int32_t y = 0; y < out_h; ++y) {
    const int32_t* w = weights + static_cast<size_t>(y) * ksize;
    for (size_t i = 0; i < row; ++i) {
      int32_t acc = 1 << (kPrecisionBits - 1);
      for (int32_t k = 0; k < size[y]; ++k) acc += in[(first[y] + k) * row + i] * w[k];
      out[y * row + i] = clip8(acc);
    }
  }
}

}  // namespace

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter, box = whole image.
void ImagePreprocessor::compute_taps(int32_t in_size, int32_t out_size, Taps* taps) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;
  taps->ksize = static_cast<int32_t>(std::ceil(support)) * 2 + 1;
  taps->first.resize(out_size);
  taps->size.resize(out_size);
  taps->weights.assign(static_cast<size_t>(out_size) * taps->ksize, 0);
  kernel_.resize(taps->ksize);
  const double inverse_scale = 1.0 / filter_scale;  // Pillow multiplies by the reciprocal
  for (int32_t i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    // Truncation toward zero, then clamping, as Pillow's (int) casts do.
    const int32_t lo = std::max(static_cast<int32_t>(center - support + 0.5), 0);
    const int32_t hi = std::min(static_cast<int32_t>(center + support + 0.5), in_size);
    const int32_t n = hi - lo;
    double total = 0.0;
    for (int32_t k = 0; k < n; ++k) {
      kernel_[k] = triangle((k + lo - center + 0.5) * inverse_scale);
      total += kernel_[k];
    }
    int32_t* w = taps->weights.data() + static_cast<size_t>(i) * taps->ksize;
    for (int32_t k = 0; k < n; ++k) {
      const double v = total != 0.0 ? kernel_[k] / total : kernel_[k];
      // Round half away from zero into fixed point (the weights are never negative here).
      w[k] = static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    taps->first[i] = lo;
    taps->size[i] = n;
  }
}

bool ImagePreprocessor::run(const RgbaImage& image, const TensorInfo& input, float mean, float std,
                            void* out, size_t out_bytes, std::string* error) {
  const int32_t c = input.c;
  if (input.rank != 4 || input.shape[0] != 1 || (c != 1 && c != 3) || input.h < 1 || input.w < 1) {
    *error = "the model input is not an image tensor [1][h][w][1 or 3]";
    return false;
  }
  if (image.pixels == nullptr || image.width < 1 || image.height < 1 ||
      image.stride < static_cast<size_t>(image.width) * 4) {
    *error = "empty image or bad row stride";
    return false;
  }
  if (!std::isfinite(mean) || !std::isfinite(std) || std == 0.0f) {
    *error = "normalization needs a finite mean and a finite, non-zero std";
    return false;
  }
  if (input.dtype != DType::Float32 && !(input.scale > 0.0f)) {
    *error = "the 8-bit model input has no positive quantization scale";
    return false;
  }
  if (out == nullptr || out_bytes < tensor_bytes(input)) {
    *error = "the input buffer is smaller than the model input";
    return false;
  }

  // 1. RGB or luma, packed.
  const int32_t in_w = image.width, in_h = image.height;
  source_.resize(static_cast<size_t>(in_w) * in_h * c);
  for (int32_t y = 0; y < in_h; ++y) {
    const uint8_t* px = image.pixels + static_cast<size_t>(y) * image.stride;
    uint8_t* dst = source_.data() + static_cast<size_t>(y) * in_w * c;
    for (int32_t x = 0; x < in_w; ++x, px += 4) {
      if (c == 3) {
        std::memcpy(dst + x * 3, px, 3);
      } else {
        dst[x] = static_cast<uint8_t>((px[0] * 19595 + px[1] * 38470 + px[2] * 7471 + 0x8000) >> 16);
      }
    }
  }

  // 2. Resize: the horizontal pass (when the width changes) over just the rows the vertical pass
  // reads, then the vertical pass (when the height changes).
  const int32_t out_w = input.w, out_h = input.h;
  const uint8_t* pixels = source_.data();
  int32_t width = in_w;
  compute_taps(in_h, out_h, &vertical_);
  if (out_w != in_w) {
    compute_taps(in_w, out_w, &horizontal_);
    const int32_t row0 = vertical_.first.front();
    const int32_t rows = vertical_.first.back() + vertical_.size.back() - row0;
    for (int32_t& f : vertical_.first) f -= row0;
    temp_.resize(static_cast<size_t>(out_w) * rows * c);
    resample_horizontal(pixels, in_w, row0, rows, c, out_w, horizontal_.first.data(),
                        horizontal_.size.data(), horizontal_.weights.data(), horizontal_.ksize,
                        temp_.data());
    pixels = temp_.data();
    width = out_w;
  }
  if (out_h != in_h) {
    resized_.resize(static_cast<size_t>(out_w) * out_h * c);
    resample_vertical(pixels, width, c, out_h, vertical_.first.data(), vertical_.size.data(),
                      vertical_.weights.data(), vertical_.ksize, resized_.data());
    pixels = resized_.data();
  }

  // 3-4. Normalize, then quantize for 8-bit inputs.
  const size_t n = static_cast<size_t>(out_w) * out_h * c;
  if (input.dtype == DType::Float32) {
    float* dst = static_cast<float*>(out);
    for (size_t i = 0; i < n; ++i) dst[i] = (static_cast<float>(pixels[i]) - mean) / std;
    return true;
  }
  const bool is_signed = input.dtype == DType::Int8;
  const float qmin = is_signed ? -128.0f : 0.0f, qmax = is_signed ? 127.0f : 255.0f;
  for (size_t i = 0; i < n; ++i) {
    const float x = (static_cast<float>(pixels[i]) - mean) / std;
    // std::round on a float is roundf: halves away from zero, exact. Clamp before converting.
    const float q = std::min(std::max(std::round(x / input.scale) + input.zero_point, qmin), qmax);
    if (is_signed) {
      static_cast<int8_t*>(out)[i] = static_cast<int8_t>(q);
    } else {
      static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(q);
    }
  }
  return true;
}

}  // namespace io
}  // namespace mobilegen
