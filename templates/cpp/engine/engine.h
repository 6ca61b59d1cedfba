// mobilegen engine: the public C++ API. Portable C++17 over EGL + GLES 3.1; no Android calls here
// (the JNI layer and the host runner sit on top of this header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "plan.h"

namespace mobilegen {

enum class Status : int32_t {
  Ok = 0,
  InvalidBlob = 1,      // weights blob: bad magic, version, size, checksum or plan hash
  InvalidInput = 2,     // wrong input size or type
  GpuUnavailable = 3,   // no EGL / GLES 3.1 compute (only when the GPU backend was demanded)
  GpuError = 4,         // shader compile/link failure or GL error
  InvalidArgument = 5,  // e.g. a null pointer, an unknown backend
  IoError = 6,          // program cache or dump directory not writable
};

const char* status_name(Status s);

enum class Backend : int32_t {
  Auto = 0,  // GPU when GLES 3.1 compute works, else the CPU
  Gpu = 1,
  Cpu = 2,
};

struct Options {
  Backend backend = Backend::Auto;
  // Directory for the program-binary cache (keyed by renderer, driver version and shader hash);
  // empty: no cache.
  std::string cache_dir;
};

// One tensor as the debug hook sees it: NHWC (TFLite's layout), in the tensor's own dtype.
using TensorDumpFn = std::function<void(const TensorInfo& info, const void* data, size_t bytes)>;

class Engine {
 public:
  // Validates the blob against the compiled-in plan, sets up the backend, compiles programs (or
  // loads them from the cache) and uploads the weights once. `blob` must stay valid only during
  // the call. On failure returns nullptr and sets *status and *error.
  static std::unique_ptr<Engine> create(const void* blob, size_t blob_size, const Options& options,
                                        Status* status, std::string* error);
  virtual ~Engine() = default;

  // The graph input and output as TFLite describes them.
  virtual const TensorInfo& input() const = 0;
  virtual const TensorInfo& output() const = 0;
  virtual Backend backend() const = 0;  // the backend in use (never Auto)

  // Runs one inference. `input` holds input().dtype values in NHWC order; `output` receives
  // output().dtype values. Allocates nothing. With `dump`, calls it for the graph input and every
  // tensor an operator writes, in graph order (slower: reads every tensor back).
  virtual Status run(const void* input, size_t input_bytes, void* output, size_t output_bytes,
                     std::string* error, const TensorDumpFn& dump = nullptr) = 0;

  // Time spent in the last run(), in microseconds (GPU: including the read-back).
  virtual double last_run_us() const = 0;
};

}  // namespace mobilegen
