// mobilegen engine: the interface each backend implements (internal; not part of the public API).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine.h"
#include "plan.h"

namespace mobilegen {

class BackendImpl {
 public:
  virtual ~BackendImpl() = default;

  // Called once, after the blob was validated: prepare every kernel of `plan`, upload or copy the
  // constants it needs from `payload` (which is only valid during the call), allocate every
  // tensor. Nothing is allocated after this returns.
  virtual Status init(const ModelPlan& plan, const uint8_t* payload, size_t payload_size,
                      const Options& options, std::string* error) = 0;

  // `inputs[i]`: graph input i (ModelPlan::inputs) in NHWC order and its own dtype;
  // `outputs[i]`: room for graph output i. Engine::run has checked counts and sizes. With `dump`,
  // reports each graph input and then every kernel's output, in kernel order, as NHWC data of the
  // tensor's dtype holding the stored values (Engine::run).
  virtual Status run(const void* const* inputs, void* const* outputs, std::string* error,
                     const TensorDumpFn& dump) = 0;

  virtual Backend kind() const = 0;

  // The GPU's name once init() reached it (GLES: GL_RENDERER, Metal: MTLDevice.name), also after
  // a later failure; empty on the CPU (Engine::backend_info).
  virtual std::string renderer() const { return {}; }
};

// init() returns GpuUnavailable when EGL / GLES 3.1 compute is missing.
std::unique_ptr<BackendImpl> make_gles_backend();
// init() returns GpuUnavailable when there is no Metal device (metal_backend.cpp).
std::unique_ptr<BackendImpl> make_metal_backend();
std::unique_ptr<BackendImpl> make_cpu_backend();

// The GPU backend this build compiles: Metal on Apple platforms and in the iOS host proof (CMake's
// MOBILEGEN_GPU=METAL_HOST defines MOBILEGEN_METAL), GLES everywhere else (Android, the Android
// host build). nullptr from a build without one (MOBILEGEN_GPU=NONE).
inline std::unique_ptr<BackendImpl> make_gpu_backend() {
#if defined(MOBILEGEN_METAL) || defined(__APPLE__)
  return make_metal_backend();
#else
  return make_gles_backend();
#endif
}

}  // namespace mobilegen
