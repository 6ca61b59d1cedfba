// mobilegen engine: Engine::create (blob validation, backend selection) and Engine::run checks.
#include <chrono>
#include <new>
#include <string>
#include <utility>
#include <vector>

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

  using Engine::run;

  int num_inputs() const override { return plan_.num_inputs; }
  int num_outputs() const override { return plan_.num_outputs; }
  const TensorInfo& input(int i) const override { return plan_.tensors[plan_.inputs[i]]; }
  const TensorInfo& output(int i) const override { return plan_.tensors[plan_.outputs[i]]; }
  Backend backend() const override { return backend_->kind(); }
  const BackendInfo& backend_info() const override { return info_; }
  double last_run_us() const override { return last_run_us_; }

  Status run(const InputBuffer* inputs, int num_inputs, const OutputBuffer* outputs, int num_outputs,
             std::string* error, const TensorDumpFn& dump) override {
    if (num_inputs != plan_.num_inputs || num_outputs != plan_.num_outputs) {
      if (error) {
        *error = "run: " + std::to_string(num_inputs) + " inputs and " + std::to_string(num_outputs) +
                 " outputs given; the model has " + std::to_string(plan_.num_inputs) + " and " +
                 std::to_string(plan_.num_outputs);
      }
      return Status::InvalidArgument;
    }
    if ((num_inputs > 0 && inputs == nullptr) || (num_outputs > 0 && outputs == nullptr)) {
      if (error) *error = "run: input and output must not be null";
      return Status::InvalidArgument;
    }
    for (int i = 0; i < num_inputs; ++i) {
      const size_t want = tensor_bytes(input(i));
      if (inputs[i].data == nullptr) {
        if (error) *error = "run: input " + std::to_string(i) + " must not be null";
        return Status::InvalidArgument;
      }
      if (inputs[i].bytes != want) {
        if (error) {
          *error = "input " + (num_inputs > 1 ? std::to_string(i) + " " : std::string()) + "'" + input(i).name +
                   "': " + std::to_string(inputs[i].bytes) + " bytes, expected " + std::to_string(want) + " (" +
                   describe(input(i)) + ")";
        }
        return Status::InvalidInput;
      }
      in_ptrs_[i] = inputs[i].data;
    }
    for (int i = 0; i < num_outputs; ++i) {
      const size_t want = tensor_bytes(output(i));
      if (outputs[i].data == nullptr) {
        if (error) *error = "run: output " + std::to_string(i) + " must not be null";
        return Status::InvalidArgument;
      }
      if (outputs[i].bytes != want) {
        if (error) {
          *error = "output " + (num_outputs > 1 ? std::to_string(i) + " " : std::string()) + "'" +
                   output(i).name + "': room for " + std::to_string(outputs[i].bytes) + " bytes, expected " +
                   std::to_string(want) + " (" + describe(output(i)) + ")";
        }
        return Status::InvalidArgument;
      }
      out_ptrs_[i] = outputs[i].data;
    }
    const auto start = std::chrono::steady_clock::now();
    const Status st = backend_->run(in_ptrs_.data(), out_ptrs_.data(), error, dump);
    last_run_us_ = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    return st;
  }

 private:
  const ModelPlan& plan_;
  std::unique_ptr<BackendImpl> backend_;
  BackendInfo info_;
  double last_run_us_ = 0.0;
  // The buffers of run() as the backend takes them; sized once, so run() allocates nothing.
  std::vector<const void*> in_ptrs_ = std::vector<const void*>(static_cast<size_t>(plan_.num_inputs));
  std::vector<void*> out_ptrs_ = std::vector<void*>(static_cast<size_t>(plan_.num_outputs));
};

// Checks the compiled-in plan's own tables (they are generated, so this only guards against a
// model_plan.cpp from an incompatible generator).
Status check_plan(const ModelPlan& plan, std::string* error) {
  auto in_range = [&](int id) { return id >= 0 && id < plan.num_tensors; };
  auto ids_in_range = [&](const int32_t* ids, int n) {
    if (n <= 0 || ids == nullptr) return false;
    for (int i = 0; i < n; ++i) {
      if (!in_range(ids[i])) return false;
    }
    return true;
  };
  if (plan.tensors == nullptr || plan.num_tensors <= 0 || !ids_in_range(plan.inputs, plan.num_inputs) ||
      !ids_in_range(plan.outputs, plan.num_outputs) || (plan.num_kernels > 0 && plan.kernels == nullptr)) {
    *error = "model plan: inconsistent tables";
    return Status::InvalidArgument;
  }
  for (int i = 0; i < plan.num_tensors; ++i) {
    const TensorInfo& t = plan.tensors[i];
    if (t.half && (plan.precision != Precision::Fp16 || t.dtype != DType::Float32)) {
      *error = std::string("model plan: tensor ") + t.name + " has float16 storage but is not a float tensor at fp16";
      return Status::InvalidArgument;
    }
  }
  for (int i = 0; i < plan.num_kernels; ++i) {
    const Kernel& k = plan.kernels[i];
    if (!in_range(k.output) || !in_range(k.inputs[0]) || (k.inputs[1] != -1 && !in_range(k.inputs[1]))) {
      *error = "model plan: kernel " + std::to_string(i) + " refers to a tensor out of range";
      return Status::InvalidArgument;
    }
    // Backends may give a RESHAPE's output its input's memory: the two must share one storage.
    if (k.type == KernelType::Reshape && plan.tensors[k.output].half != plan.tensors[k.inputs[0]].half) {
      *error = "model plan: kernel " + std::to_string(i) + " (Reshape) between float16 and float32 storage";
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
      backend = make_gpu_backend();
      *status = backend ? backend->init(plan, payload, payload_size, options, error) : Status::GpuUnavailable;
      if (backend) info.renderer = backend->renderer();
      const bool gpu_failed = *status == Status::GpuUnavailable || *status == Status::GpuError;
      if (gpu_failed && options.backend == Backend::Auto) {  // see Backend::Auto in engine.h
        // Kept for backend_info(): the reason a developer needs to see in the field.
        info.fallback_status = *status;
        info.fallback_reason = error->empty() ? std::string(status_name(*status)) : *error;
        backend.reset();  // release the GPU context before the CPU allocates its arena
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
