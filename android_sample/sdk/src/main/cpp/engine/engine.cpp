// mobilegen engine: Engine::create (blob validation, backend selection) and Engine::run checks.
#include <chrono>
#include <new>
#include <string>
#include <utility>

#include "backend.h"
#include "blob.h"
#include "engine.h"

namespace mobilegen {

const char* status_name(Status s) {
  switch (s) {
    case Status::Ok: return "Ok";
    case Status::InvalidBlob: return "InvalidBlob";
    case Status::InvalidInput: return "InvalidInput";
    case Status::GpuUnavailable: return "GpuUnavailable";
    case Status::GpuError: return "GpuError";
    case Status::InvalidArgument: return "InvalidArgument";
    case Status::IoError: return "IoError";
    case Status::OutOfMemory: return "OutOfMemory";
  }
  return "Unknown";
}

namespace {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "float32";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
  }
  return "?";
}

std::string describe(const TensorInfo& t) {
  std::string s = std::string(dtype_name(t.dtype)) + "[";
  for (int i = 0; i < t.rank; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(const ModelPlan& plan, std::unique_ptr<BackendImpl> backend, BackendInfo info)
      : plan_(plan), backend_(std::move(backend)), info_(std::move(info)) {
    info_.backend = backend_->kind();
  }

  const TensorInfo& input() const override { return plan_.tensors[plan_.input]; }
  const TensorInfo& output() const override { return plan_.tensors[plan_.output]; }
  Backend backend() const override { return backend_->kind(); }
  const BackendInfo& backend_info() const override { return info_; }
  double last_run_us() const override { return last_run_us_; }

  Status run(const void* input, size_t input_bytes, void* output, size_t output_bytes, std::string* error,
             const TensorDumpFn& dump) override {
    if (input == nullptr || output == nullptr) {
      if (error) *error = "run: input and output must not be null";
      return Status::InvalidArgument;
    }
    const size_t want_in = tensor_bytes(this->input());
    if (input_bytes != want_in) {
      if (error) {
        *error = "input: " + std::to_string(input_bytes) + " bytes, expected " + std::to_string(want_in) + " (" +
                 describe(this->input()) + ")";
      }
      return Status::InvalidInput;
    }
    const size_t want_out = tensor_bytes(this->output());
    if (output_bytes != want_out) {
      if (error) {
        *error = "output: room for " + std::to_string(output_bytes) + " bytes, expected " +
                 std::to_string(want_out) + " (" + describe(this->output()) + ")";
      }
      return Status::InvalidArgument;
    }
    const auto start = std::chrono::steady_clock::now();
    const Status st = backend_->run(input, output, error, dump);
    last_run_us_ = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    return st;
  }

 private:
  const ModelPlan& plan_;
  std::unique_ptr<BackendImpl> backend_;
  BackendInfo info_;
  double last_run_us_ = 0.0;
};

// Checks the compiled-in plan's own tables (they are generated, so this only guards against a
// model_plan.cpp from an incompatible generator).
Status check_plan(const ModelPlan& plan, std::string* error) {
  auto in_range = [&](int id) { return id >= 0 && id < plan.num_tensors; };
  if (plan.tensors == nullptr || plan.num_tensors <= 0 || !in_range(plan.input) || !in_range(plan.output) ||
      (plan.num_kernels > 0 && plan.kernels == nullptr)) {
    *error = "model plan: inconsistent tables";
    return Status::InvalidArgument;
  }
  for (int i = 0; i < plan.num_kernels; ++i) {
    const Kernel& k = plan.kernels[i];
    if (!in_range(k.output) || !in_range(k.inputs[0]) || (k.inputs[1] != -1 && !in_range(k.inputs[1]))) {
      *error = "model plan: kernel " + std::to_string(i) + " refers to a tensor out of range";
      return Status::InvalidArgument;
    }
  }
  return Status::Ok;
}

}  // namespace

namespace {

std::unique_ptr<Engine> create_engine(const void* blob, size_t blob_size, const Options& options, Status* status,
                                      std::string* error) {
  const ModelPlan& plan = model_plan();

  *status = check_plan(plan, error);
  if (*status != Status::Ok) return nullptr;
  const uint8_t* payload = nullptr;
  size_t payload_size = 0;
  *status = validate_blob(plan, blob, blob_size, &payload, &payload_size, error);
  if (*status != Status::Ok) return nullptr;

  std::unique_ptr<BackendImpl> backend;
  BackendInfo info;
  switch (options.backend) {
    case Backend::Gpu:
    case Backend::Auto: {
      backend = make_gles_backend();
      *status = backend ? backend->init(plan, payload, payload_size, options, error) : Status::GpuUnavailable;
      if (backend) info.renderer = backend->renderer();
      const bool gpu_failed = *status == Status::GpuUnavailable || *status == Status::GpuError;
      if (gpu_failed && options.backend == Backend::Auto) {  // see Backend::Auto in engine.h
        // Kept for backend_info(): the reason a developer needs to see in the field.
        info.fallback_status = *status;
        info.fallback_reason = error->empty() ? std::string(status_name(*status)) : *error;
        backend.reset();  // release the EGL context before the CPU allocates its arena
        error->clear();
        break;
      }
      if (*status != Status::Ok) return nullptr;
      return std::make_unique<EngineImpl>(plan, std::move(backend), std::move(info));
    }
    case Backend::Cpu:
      break;
    default:
      *status = Status::InvalidArgument;
      *error = "unknown backend " + std::to_string(static_cast<int>(options.backend));
      return nullptr;
  }
  backend = make_cpu_backend();
  *status = backend->init(plan, payload, payload_size, options, error);
  if (*status != Status::Ok) return nullptr;
  return std::make_unique<EngineImpl>(plan, std::move(backend), std::move(info));
}

}  // namespace

std::unique_ptr<Engine> Engine::create(const void* blob, size_t blob_size, const Options& options, Status* status,
                                       std::string* error) {
  Status local_status = Status::Ok;
  std::string local_error;
  if (status == nullptr) status = &local_status;
  if (error == nullptr) error = &local_error;
  error->clear();
#if defined(__cpp_exceptions)
  // Allocation failure (a huge model on a small device) is the one exception the engine can meet;
  // it must not cross the API.
  try {
    return create_engine(blob, blob_size, options, status, error);
  } catch (const std::bad_alloc&) {
    *status = Status::OutOfMemory;
    *error = "out of memory while setting up the engine";
    return nullptr;
  }
#else
  return create_engine(blob, blob_size, options, status, error);
#endif
}

}  // namespace mobilegen
