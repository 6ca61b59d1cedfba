// mobilegen engine: the GPU backend on Metal, in C++ over the Metal-shaped interface of
// metal_api.h (real Metal through Metal/MGMetalDevice.mm on iOS; the host executor of
// metal_host/host_device.cpp in `mobilegen verify`).
//
// This file decides everything the platform layer must not: which pipeline each kernel runs,
// which buffers sit in which slots (gpu_layout.h: exactly the GLES backend's bindings), the
// threadgroup size of each dispatch (checked against the pipeline's
// maxTotalThreadsPerThreadgroup), and when to wait.
//
// init() creates the device and its queue, compiles the plan's one library (ModelPlan::
// shader_library) and one pipeline per kernel function (through a binary archive under
// Options::cache_dir when given), uploads the weights once into shared-storage buffers and
// allocates every tensor. run() writes the inputs into their buffers, encodes every dispatch into
// one command buffer (Metal's model: a command buffer per submission; nothing else is created),
// commits, waits and reads the outputs back. With a dump, each kernel gets its own command buffer
// so its output can be read before the next one runs.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "gpu_layout.h"
#include "metal_api.h"
#include "plan.h"

namespace mobilegen {
namespace {

using gpu::fail;
using gpu::kBindings;

const char* kernel_type_name(KernelType t) {
  switch (t) {
    case KernelType::Conv2D: return "Conv2D";
    case KernelType::DepthwiseConv2D: return "DepthwiseConv2D";
    case KernelType::FullyConnected: return "FullyConnected";
    case KernelType::AveragePool2D: return "AveragePool2D";
    case KernelType::MaxPool2D: return "MaxPool2D";
    case KernelType::Mean: return "Mean";
    case KernelType::Add: return "Add";
    case KernelType::Pad: return "Pad";
    case KernelType::Concat: return "Concat";
    case KernelType::Softmax: return "Softmax";
    case KernelType::Quantize: return "Quantize";
    case KernelType::Requantize: return "Requantize";
    case KernelType::Dequantize: return "Dequantize";
    case KernelType::Reshape: return "Reshape";
    case KernelType::Activation: return "Activation";
  }
  return "?";
}

// One kernel's dispatch as encoded: its pipeline, slots and sizes (after fitting the pipeline).
struct Encoded {
  const metal::Pipeline* pipeline = nullptr;  // nullptr: an alias, no work
  metal::Buffer* slots[kBindings] = {};
  uint32_t groups[3] = {0, 0, 0};
  uint32_t threads[3] = {0, 0, 0};
};

class MetalBackend final : public BackendImpl {
 public:
  Status init(const ModelPlan& plan, const uint8_t* payload, size_t payload_size, const Options& options,
              std::string* error) override {
    plan_ = &plan;
    std::string why;
    device_ = metal::create_system_default_device(&why);
    if (!device_) return fail(Status::GpuUnavailable, "no Metal device" + (why.empty() ? "" : ": " + why), error);
    renderer_ = device_->name();
    Status st = build_pipelines(options.cache_dir, error);
    if (st != Status::Ok) return st;
    if ((st = allocate_tensors(error)) != Status::Ok) return st;
    return upload_constants(payload, payload_size, error);
  }

  Status run(const void* const* inputs, void* const* outputs, std::string* error, const TensorDumpFn& dump) override {
    if (!device_) {
      return fail(Status::GpuError, "Metal backend not initialized", error);
    }
    const ModelPlan& plan = *plan_;
    // NHWC -> PHWC4 straight into the shared buffers (a float16 input rounded, TensorInfo::half).
    for (int32_t i = 0; i < plan.num_inputs; ++i) {
      const int32_t id = plan.inputs[i];
      gpu::pack(plan.tensors[id], inputs[i], contents(id));
    }
    if (dump) {  // the inputs as the kernels see them
      for (int32_t i = 0; i < plan.num_inputs; ++i) report(plan.inputs[i], dump);
    }
    if (!dump) {
      // Every dispatch in one command buffer; the serial encoder plus a buffer barrier after each
      // dispatch orders a kernel's reads after its producer's writes.
      metal::CommandBuffer* cb = device_->command_buffer(&why_);
      if (cb == nullptr) return fail(Status::GpuError, "no command buffer: " + why_, error);
      metal::ComputeEncoder& enc = cb->compute_encoder();
      for (const Encoded& e : encoded_) encode(enc, e);
      enc.end_encoding();
      if (!cb->commit_and_wait(&why_)) return fail(Status::GpuError, "the command buffer failed: " + why_, error);
    } else {
      for (int32_t i = 0; i < plan.num_kernels; ++i) {
        const Encoded& e = encoded_[i];
        if (e.pipeline != nullptr) {
          metal::CommandBuffer* cb = device_->command_buffer(&why_);
          if (cb == nullptr) return fail(Status::GpuError, "no command buffer: " + why_, error);
          metal::ComputeEncoder& enc = cb->compute_encoder();
          encode(enc, e);
          enc.end_encoding();
          if (!cb->commit_and_wait(&why_)) {
            return fail(Status::GpuError, "kernel " + std::to_string(i) + " (" + kernel_type_name(plan.kernels[i].type) +
                                              ") failed: " + why_, error);
          }
        }
        report(plan.kernels[i].output, dump);
      }
    }
    for (int32_t i = 0; i < plan.num_outputs; ++i) {
      const int32_t id = plan.outputs[i];
      gpu::unpack(plan.tensors[id], contents(id), outputs[i]);
    }
    return Status::Ok;
  }

  Backend kind() const override { return Backend::Gpu; }
  std::string renderer() const override { return renderer_; }

 private:
  uint8_t* contents(int32_t tensor) { return static_cast<uint8_t*>(tensor_buffers_[tensor]->contents()); }

  void report(int32_t tensor, const TensorDumpFn& dump) {
    const TensorInfo& t = plan_->tensors[tensor];
    gpu::unpack(t, contents(tensor), dump_nhwc_.data());
    dump(t, dump_nhwc_.data(), tensor_bytes(t));
  }

  static void encode(metal::ComputeEncoder& enc, const Encoded& e) {
    if (e.pipeline == nullptr) return;
    enc.set_pipeline(*e.pipeline);
    // Every slot, every dispatch: a slot this kernel does not use is unbound (nullptr), so it
    // never keeps the previous kernel's buffer.
    for (int j = 0; j < kBindings; ++j) enc.set_buffer(e.slots[j], static_cast<uint32_t>(j));
    enc.dispatch_threadgroups(e.groups, e.threads);
    enc.barrier();
  }

  // -- pipelines ----------------------------------------------------------------------------------
  Status build_pipelines(const std::string& cache_dir, std::string* error) {
    const ModelPlan& plan = *plan_;
    if (plan.num_shaders > 0 && plan.shader_library == nullptr) {
      return fail(Status::GpuError, "the model plan has no Metal library", error);
    }
    std::string why;
    if (plan.num_shaders > 0) {
      library_ = device_->new_library(plan.shader_library, &why);
      if (!library_) return fail(Status::GpuError, "the Metal library does not compile: " + why, error);
    }
    // The archive file is keyed by the device and the library source (a new model or driver gets
    // a new file). Best effort: a cache that cannot be opened or written only costs compile time.
    std::unique_ptr<metal::PipelineArchive> archive;
    if (!cache_dir.empty() && plan.num_shaders > 0) {
      char name[40];
      std::snprintf(name, sizeof name, "%016llx.metalar",
                    static_cast<unsigned long long>(gpu::fnv1a(plan.shader_library, gpu::fnv1a(renderer_))));
      archive = device_->open_archive(cache_dir + "/" + name, &why);
    }
    int misses = 0;
    pipelines_.clear();
    for (int32_t i = 0; i < plan.num_shaders; ++i) {
      const char* function = plan.shaders[i].name;
      bool hit = false;
      std::unique_ptr<metal::Pipeline> p = library_->new_pipeline(function, archive.get(), &hit, &why);
      if (!p) return fail(Status::GpuError, std::string("kernel function ") + function + ": " + why, error);
      if (!hit) ++misses;
      pipelines_.push_back(std::move(p));
    }
    if (archive && misses > 0) archive->serialize(&why);
    return Status::Ok;
  }

  // The threadgroup size of kernel `i` on `pipeline`: the plan's, or, when the pipeline allows
  // fewer threads, the plan's halved along its largest dimension until it fits, with the group
  // count grown to cover the same grid (kernels guard their grid bounds, so the rounded-up grid is
  // safe). Halving keeps powers of two (multiples of the SIMD width while they stay above it).
  // Softmax's group size is the size of its threadgroup reduction array: it cannot shrink, and
  // the backend fails (Backend::Auto then runs on the CPU).
  Status fit_threadgroup(int32_t i, const metal::Pipeline& pipeline, Encoded* e, std::string* error) const {
    const Kernel& k = plan_->kernels[i];
    const uint32_t* t = k.gpu.threads;
    const uint32_t* g = k.gpu.groups;
    if (t[0] == 0 || t[1] == 0 || t[2] == 0 || g[0] == 0 || g[1] == 0 || g[2] == 0) {
      return fail(Status::GpuError, "kernel " + std::to_string(i) + ": an empty dispatch in the model plan", error);
    }
    const uint64_t max = pipeline.max_total_threads_per_threadgroup();
    const uint64_t total = static_cast<uint64_t>(t[0]) * t[1] * t[2];
    std::copy(t, t + 3, e->threads);
    std::copy(g, g + 3, e->groups);
    if (total <= max) return Status::Ok;
    if (k.type == KernelType::Softmax) {
      return fail(Status::GpuError,
                  "kernel " + std::to_string(i) + " (Softmax) needs " + std::to_string(total) +
                      " threads per threadgroup (its threadgroup array is sized for them); the pipeline of " +
                      plan_->shaders[k.gpu.shader].name + " allows " + std::to_string(max) + " on " + renderer_,
                  error);
    }
    while (static_cast<uint64_t>(e->threads[0]) * e->threads[1] * e->threads[2] > max) {
      uint32_t* largest = std::max_element(e->threads, e->threads + 3);
      *largest = (*largest + 1) / 2;
    }
    for (int d = 0; d < 3; ++d) {
      const uint64_t grid = static_cast<uint64_t>(g[d]) * t[d];
      e->groups[d] = static_cast<uint32_t>((grid + e->threads[d] - 1) / e->threads[d]);
    }
    return Status::Ok;
  }

  // -- buffers ------------------------------------------------------------------------------------
  metal::Buffer* new_buffer(size_t bytes, const void* data, std::string* error) {
    std::string why;
    std::unique_ptr<metal::Buffer> b = device_->new_buffer(std::max<size_t>(bytes, 16), data, &why);
    if (!b) {
      fail(Status::GpuError, "cannot allocate a buffer of " + std::to_string(bytes) + " bytes: " + why, error);
      return nullptr;
    }
    buffers_.push_back(std::move(b));
    return buffers_.back().get();
  }

  Status allocate_tensors(std::string* error) {
    const ModelPlan& plan = *plan_;
    std::vector<int32_t> owner;
    size_t phwc4 = 0, nhwc = 0;
    Status st = gpu::plan_tensor_storage(plan, &owner, &phwc4, &nhwc, error);
    if (st != Status::Ok) return st;
    tensor_buffers_.assign(static_cast<size_t>(plan.num_tensors), nullptr);
    for (int32_t id = 0; id < plan.num_tensors; ++id) {  // owners first: an alias follows its input
      if (owner[id] == id && (tensor_buffers_[id] = new_buffer(gpu::phwc4_bytes(plan.tensors[id]), nullptr, error)) == nullptr) {
        return Status::GpuError;
      }
    }
    for (int32_t id = 0; id < plan.num_tensors; ++id) {
      if (owner[id] >= 0) tensor_buffers_[id] = tensor_buffers_[owner[id]];
    }
    dump_nhwc_.assign(nhwc, 0);
    return Status::Ok;
  }

  Status upload_constants(const uint8_t* payload, size_t payload_size, std::string* error) {
    const ModelPlan& plan = *plan_;
    encoded_.assign(static_cast<size_t>(plan.num_kernels), Encoded());
    std::vector<uint8_t> channel, weights;
    for (int32_t i = 0; i < plan.num_kernels; ++i) {
      const Kernel& k = plan.kernels[i];
      Encoded& e = encoded_[i];
      if (k.gpu.shader < 0) continue;
      e.pipeline = pipelines_[k.gpu.shader].get();
      Status st = fit_threadgroup(i, *e.pipeline, &e, error);
      if (st != Status::Ok) return st;
      e.slots[0] = tensor_buffers_[k.output];
      if (k.inputs[0] >= 0) e.slots[1] = tensor_buffers_[k.inputs[0]];
      if (k.inputs[1] >= 0) e.slots[2] = tensor_buffers_[k.inputs[1]];
      if ((st = gpu::kernel_constants(plan, i, payload, payload_size, &channel, &weights, error)) != Status::Ok) {
        return st;
      }
      if (!weights.empty() && (e.slots[3] = new_buffer(weights.size(), weights.data(), error)) == nullptr) {
        return Status::GpuError;
      }
      if (!channel.empty() && (e.slots[2] = new_buffer(channel.size(), channel.data(), error)) == nullptr) {
        return Status::GpuError;
      }
    }
    return Status::Ok;
  }

  const ModelPlan* plan_ = nullptr;
  std::unique_ptr<metal::Device> device_;
  std::unique_ptr<metal::Library> library_;
  std::string renderer_;  // MTLDevice.name (Engine::backend_info)
  std::vector<std::unique_ptr<metal::Pipeline>> pipelines_;  // per shader (kernel function)
  std::vector<std::unique_ptr<metal::Buffer>> buffers_;      // every buffer we own
  std::vector<metal::Buffer*> tensor_buffers_;               // per tensor id (aliases share)
  std::vector<Encoded> encoded_;                             // per kernel
  std::vector<uint8_t> dump_nhwc_;                           // NHWC unpacking for dumps
  std::string why_;  // the interface's error text in run(); its capacity is kept between runs
};

}  // namespace

std::unique_ptr<BackendImpl> make_metal_backend() { return std::unique_ptr<BackendImpl>(new MetalBackend()); }

}  // namespace mobilegen
