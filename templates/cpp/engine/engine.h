// mobilegen engine: the public C++ API. Portable C++17 over one GPU backend, GLES 3.1 through EGL
// (Android) or Metal (iOS), and a CPU fallback; no Android or Apple calls here
// (the JNI layer and the host runner sit on top of this header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "plan.h"

// The engine compiles with hidden visibility (CMakeLists.txt), so a shared library built from it
// exports only what is marked here: this header's API.
#if defined(__GNUC__)
#define MOBILEGEN_API __attribute__((visibility("default")))
#else
#define MOBILEGEN_API
#endif

namespace mobilegen {

enum class Status : int32_t {
  Ok = 0,
  InvalidBlob = 1,      // weights blob: bad magic, version, size, checksum or plan hash
  InvalidInput = 2,     // wrong input size or type
  GpuUnavailable = 3,   // no EGL / GLES 3.1 compute, or no Metal device (only when the GPU backend
                        // was demanded)
  GpuError = 4,         // shader compile/link failure, GL or Metal error, a threadgroup the device
                        // cannot run (Backend::Gpu, or run())
  InvalidArgument = 5,  // e.g. a null pointer, an unknown backend
  IoError = 6,          // a dump directory not writable (never the program cache: a cache file
                        // that cannot be written is skipped)
  OutOfMemory = 7,      // an allocation failed (std::bad_alloc): too little memory for this model
};

MOBILEGEN_API const char* status_name(Status s);

enum class Backend : int32_t {
  // The GPU when its backend sets up, else the CPU: a missing EGL / GLES 3.1 or Metal device (GpuUnavailable)
  // and a driver that fails to build or run the set-up (GpuError: shader compiler bugs are common
  // on phones) both fall back. Backend::Gpu reports those errors instead.
  Auto = 0,
  Gpu = 1,
  Cpu = 2,
};

struct Options {
  Backend backend = Backend::Auto;
  // Directory for the compiled-program cache, empty: no cache. GLES: program binaries keyed by
  // renderer, driver version and shader hash; Metal: a binary archive of the pipelines. Best
  // effort: files that cannot be read or written are compiled instead.
  std::string cache_dir;
};

// What Engine::create chose, and why Auto did not take the GPU.
struct BackendInfo {
  Backend backend = Backend::Cpu;  // the backend in use (never Auto)
  // The GPU in use, or the GPU that Auto tried and left (GLES: GL_RENDERER; Metal: the
  // MTLDevice's name); empty when no GPU was reached (no EGL, no ES 3 context, no Metal device)
  // and on Backend::Cpu.
  std::string renderer;
  // Backend::Auto only: why it fell back to the CPU (GpuUnavailable or GpuError, and the GPU
  // backend's message); Ok and empty when it did not fall back.
  Status fallback_status = Status::Ok;
  std::string fallback_reason;
};

// One graph input or output of Engine::run: NHWC values in the tensor's own dtype.
struct InputBuffer {
  const void* data;
  size_t bytes;
};
struct OutputBuffer {
  void* data;
  size_t bytes;
};

// One tensor as the debug hook sees it: NHWC (TFLite's layout), in the tensor's own dtype.
using TensorDumpFn = std::function<void(const TensorInfo& info, const void* data, size_t bytes)>;

class MOBILEGEN_API Engine {
 public:
  // Validates the blob against the compiled-in plan, sets up the backend, compiles programs (or
  // loads them from the cache) and uploads the weights once. `blob` must stay valid only during
  // the call. On failure returns nullptr and sets *status and *error.
  static std::unique_ptr<Engine> create(const void* blob, size_t blob_size, const Options& options,
                                        Status* status, std::string* error);
  virtual ~Engine() = default;

  // The graph's inputs and outputs as TFLite describes them, in the model's order;
  // 0 <= i < num_inputs() (num_outputs()). input() and output() are the first of each.
  virtual int num_inputs() const = 0;
  virtual int num_outputs() const = 0;
  virtual const TensorInfo& input(int i = 0) const = 0;
  virtual const TensorInfo& output(int i = 0) const = 0;
  virtual Backend backend() const = 0;  // the backend in use (never Auto)
  virtual const BackendInfo& backend_info() const = 0;

  // Runs one inference. `inputs[i]` holds input(i).dtype values in NHWC order, exactly
  // tensor_bytes(input(i)) of them; `outputs[i]` receives output(i).dtype values and must have
  // room for exactly tensor_bytes(output(i)). The counts must equal num_inputs() and
  // num_outputs(). Allocates nothing. With `dump`, calls it for each graph input and then every
  // tensor an operator writes, in graph order, with the values the engine holds (float16 numbers
  // for the tensors stored as float16, TensorInfo::half, the inputs included) (slower: reads every
  // tensor back).
  virtual Status run(const InputBuffer* inputs, int num_inputs, const OutputBuffer* outputs, int num_outputs,
                     std::string* error, const TensorDumpFn& dump = nullptr) = 0;

  // The same for a model with one input and one output.
  Status run(const void* input, size_t input_bytes, void* output, size_t output_bytes, std::string* error,
             const TensorDumpFn& dump = nullptr) {
    const InputBuffer in{input, input_bytes};
    const OutputBuffer out{output, output_bytes};
    return run(&in, 1, &out, 1, error, dump);
  }

  // Time spent in the last run(), in microseconds (GPU: including the read-back).
  virtual double last_run_us() const = 0;
};

}  // namespace mobilegen
