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

// How to visit an image's stored pixels in display order: the display pixel (x, y) is the 4 bytes
// at origin + x * step_x + y * step_y. Each EXIF orientation is such an affine walk.
struct Walk {
  const uint8_t* origin;
  ptrdiff_t step_x, step_y;
  int32_t width, height;  // as displayed
};

bool walk_of(const RgbaImage& image, Orientation orientation, Walk* walk, std::string* error) {
  if (image.pixels == nullptr || image.width < 1 || image.height < 1 ||
      image.stride < static_cast<size_t>(image.width) * 4) {
    *error = "empty image or bad row stride";
    return false;
  }
  if (!is_orientation(static_cast<int32_t>(orientation))) {
    *error = "unknown image orientation " + std::to_string(static_cast<int32_t>(orientation)) +
             " (EXIF orientations are 1 to 8)";
    return false;
  }
  const ptrdiff_t row = static_cast<ptrdiff_t>(image.stride), px = 4;
  const ptrdiff_t last_row = (image.height - 1) * row, last_col = (image.width - 1) * px;
  // Display (x, y) reads stored row r and column c:
  ptrdiff_t origin = 0;
  switch (orientation) {
    case Orientation::Up:  // r = y, c = x
      *walk = {nullptr, px, row, image.width, image.height};
      break;
    case Orientation::UpMirrored:  // r = y, c = W-1-x
      origin = last_col;
      *walk = {nullptr, -px, row, image.width, image.height};
      break;
    case Orientation::Down:  // r = H-1-y, c = W-1-x
      origin = last_row + last_col;
      *walk = {nullptr, -px, -row, image.width, image.height};
      break;
    case Orientation::DownMirrored:  // r = H-1-y, c = x
      origin = last_row;
      *walk = {nullptr, px, -row, image.width, image.height};
      break;
    case Orientation::LeftMirrored:  // r = x, c = y
      *walk = {nullptr, row, px, image.height, image.width};
      break;
    case Orientation::Right:  // r = H-1-x, c = y
      origin = last_row;
      *walk = {nullptr, -row, px, image.height, image.width};
      break;
    case Orientation::RightMirrored:  // r = H-1-x, c = W-1-y
      origin = last_row + last_col;
      *walk = {nullptr, -row, -px, image.height, image.width};
      break;
    case Orientation::Left:  // r = x, c = W-1-y
      origin = last_col;
      *walk = {nullptr, row, -px, image.height, image.width};
      break;
  }
  walk->origin = image.pixels + origin;
  return true;
}

}  // namespace

bool is_orientation(int32_t value) { return value >= 1 && value <= 8; }

bool orientation_from_uikit(int32_t ui_image_orientation, Orientation* out) {
  // UIImageOrientation's order: Up, Down, Left, Right, UpMirrored, DownMirrored, LeftMirrored,
  // RightMirrored.
  static constexpr Orientation kByUIKit[] = {
      Orientation::Up,         Orientation::Down,         Orientation::Left,         Orientation::Right,
      Orientation::UpMirrored, Orientation::DownMirrored, Orientation::LeftMirrored, Orientation::RightMirrored,
  };
  if (ui_image_orientation < 0 || ui_image_orientation >= 8) return false;
  *out = kByUIKit[ui_image_orientation];
  return true;
}

void oriented_size(int32_t width, int32_t height, Orientation orientation, int32_t* out_width,
                   int32_t* out_height) {
  const bool swapped = static_cast<int32_t>(orientation) >= static_cast<int32_t>(Orientation::LeftMirrored);
  *out_width = swapped ? height : width;
  *out_height = swapped ? width : height;
}

bool orient_pixels(const RgbaImage& image, PixelOrder order, Orientation orientation,
                   std::vector<uint8_t>* out, int32_t* out_width, int32_t* out_height,
                   std::string* error) {
  Walk walk;
  if (!walk_of(image, orientation, &walk, error)) return false;
  const int r = order == PixelOrder::Bgra ? 2 : 0, b = 2 - r;
  out->resize(static_cast<size_t>(walk.width) * walk.height * 4);
  uint8_t* dst = out->data();
  for (int32_t y = 0; y < walk.height; ++y) {
    const uint8_t* px = walk.origin + y * walk.step_y;
    for (int32_t x = 0; x < walk.width; ++x, px += walk.step_x, dst += 4) {
      dst[0] = px[r];
      dst[1] = px[1];
      dst[2] = px[b];
      dst[3] = px[3];
    }
  }
  *out_width = walk.width;
  *out_height = walk.height;
  return true;
}

bool output_scores(const TensorInfo& output, const void* data, size_t bytes,
                   std::vector<float>* scores, std::string* error) {
  if (data == nullptr || bytes != tensor_bytes(output)) {
    *error = "the output buffer does not hold the output tensor";
    return false;
  }
  const size_t n = bytes / dtype_size(output.dtype);
  scores->resize(n);
  float* dst = scores->data();
  switch (output.dtype) {
    case DType::Float32:
      std::memcpy(dst, data, bytes);
      break;
    case DType::Int8:
      for (size_t i = 0; i < n; ++i) {
        dst[i] = output.scale * static_cast<float>(static_cast<const int8_t*>(data)[i] - output.zero_point);
      }
      break;
    case DType::UInt8:
      for (size_t i = 0; i < n; ++i) {
        dst[i] = output.scale * static_cast<float>(static_cast<const uint8_t*>(data)[i] - output.zero_point);
      }
      break;
  }
  return true;
}

void top_k(const float* scores, size_t n, size_t k, std::vector<int32_t>* out) {
  // A strict weak order: numbers before NaN, then higher scores, then lower indices.
  const auto better = [scores](int32_t a, int32_t b) {
    const bool nan_a = std::isnan(scores[a]), nan_b = std::isnan(scores[b]);
    if (nan_a != nan_b) return nan_b;
    if (!nan_a && scores[a] != scores[b]) return scores[a] > scores[b];
    return a < b;
  };
  k = std::min(k, n);
  out->resize(n);
  for (size_t i = 0; i < n; ++i) (*out)[i] = static_cast<int32_t>(i);
  std::partial_sort(out->begin(), out->begin() + static_cast<ptrdiff_t>(k), out->end(), better);
  out->resize(k);
}

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

bool ImagePreprocessor::run(const RgbaImage& image, PixelOrder order, Orientation orientation,
                            const TensorInfo& input, float mean, float std, void* out,
                            size_t out_bytes, std::string* error) {
  const int32_t c = input.c;
  if (input.rank != 4 || input.shape[0] != 1 || (c != 1 && c != 3) || input.h < 1 || input.w < 1) {
    *error = "the model input is not an image tensor [1][h][w][1 or 3]";
    return false;
  }
  Walk walk;
  if (!walk_of(image, orientation, &walk, error)) return false;
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

  // 0-1. The displayed image, RGB or luma, packed.
  const int32_t in_w = walk.width, in_h = walk.height;
  const int r = order == PixelOrder::Bgra ? 2 : 0, b = 2 - r;
  source_.resize(static_cast<size_t>(in_w) * in_h * c);
  for (int32_t y = 0; y < in_h; ++y) {
    const uint8_t* px = walk.origin + y * walk.step_y;
    uint8_t* dst = source_.data() + static_cast<size_t>(y) * in_w * c;
    for (int32_t x = 0; x < in_w; ++x, px += walk.step_x) {
      if (c == 3) {
        dst[x * 3] = px[r];
        dst[x * 3 + 1] = px[1];
        dst[x * 3 + 2] = px[b];
      } else {
        dst[x] = static_cast<uint8_t>((px[r] * 19595 + px[1] * 38470 + px[b] * 7471 + 0x8000) >> 16);
      }
    }
  }

  // 2. Resize, in the order Pillow (>= 13) runs its two passes: when the height shrinks by more
  // than twice as many pixels as the width, the vertical pass first, then the horizontal one;
  // otherwise the horizontal pass (when the width changes) over just the rows the vertical pass
  // reads, then the vertical pass (when the height changes). Each pass rounds to 8 bits, so the
  // order shows in the last bit.
  const int32_t out_w = input.w, out_h = input.h;
  const uint8_t* pixels = source_.data();
  const bool vertical_first = in_h - out_h > 0 && in_h - out_h > (in_w - out_w) * 2;
  compute_taps(in_h, out_h, &vertical_);
  if (out_w != in_w) compute_taps(in_w, out_w, &horizontal_);
  if (vertical_first) {
    temp_.resize(static_cast<size_t>(in_w) * out_h * c);
    resample_vertical(pixels, in_w, c, out_h, vertical_.first.data(), vertical_.size.data(),
                      vertical_.weights.data(), vertical_.ksize, temp_.data());
    pixels = temp_.data();
    if (out_w != in_w) {
      resized_.resize(static_cast<size_t>(out_w) * out_h * c);
      resample_horizontal(pixels, in_w, 0, out_h, c, out_w, horizontal_.first.data(),
                          horizontal_.size.data(), horizontal_.weights.data(), horizontal_.ksize,
                          resized_.data());
      pixels = resized_.data();
    }
  } else {
    int32_t width = in_w;
    if (out_w != in_w) {
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
