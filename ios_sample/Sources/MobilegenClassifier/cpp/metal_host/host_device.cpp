// mobilegen host proof of the iOS target: the host implementation of the Metal-shaped interface
// (engine/metal_api.h). It runs the generated Metal kernels, compiled as C++ against metal_shim.h
// (metal_kernels_host.cpp's kHostKernels), on the CPU, so that `mobilegen verify` exercises the
// engine's own Metal backend (metal_backend.cpp) rather than a copy of it.
//
// What it models of Metal:
//   - a library holds the kernel functions its source declares (looked up in kHostKernels);
//   - a pipeline reports maxTotalThreadsPerThreadgroup (512 here, as many iPhones allow; the
//     environment variable MOBILEGEN_METAL_HOST_MAX_THREADS sets another value, for tests) and a
//     SIMD width of 32, and a dispatch over that limit fails the command buffer, as Metal's
//     validation does;
//   - commands run when the command buffer is committed, in encoding order (a serial encoder:
//     barrier() has nothing left to order);
//   - a kernel with threadgroup memory runs every invocation of a threadgroup concurrently, one
//     std::thread each, with a real barrier behind threadgroup_barrier(), and one threadgroup at a
//     time (metal_shim.h makes threadgroup arrays function statics); other kernels spread whole
//     threadgroups over a small pool of threads;
//   - the binary archive is a file listing the functions whose pipelines it holds.
// Host only: neither Xcode nor SwiftPM compiles this directory.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "host_kernels.h"
#include "metal_api.h"

namespace mobilegen {
namespace metal_host {
namespace {

constexpr uint32_t kDefaultMaxThreads = 512;
constexpr uint32_t kSimdWidth = 32;
constexpr int kSlots = 8;  // [[buffer(0..7)]]; the engine binds 4

uint32_t max_threads_per_threadgroup() {
  const char* knob = std::getenv("MOBILEGEN_METAL_HOST_MAX_THREADS");
  if (knob == nullptr || *knob == '\0') return kDefaultMaxThreads;
  long v = std::strtol(knob, nullptr, 10);
  return v >= 1 && v <= 65536 ? static_cast<uint32_t>(v) : kDefaultMaxThreads;
}

// A reusable barrier for `count` threads (C++17 has no std::barrier).
class Barrier {
 public:
  void reset(uint32_t count) {
    count_ = count;
    waiting_ = 0;
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++waiting_ == count_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != generation; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  uint32_t count_ = 0, waiting_ = 0;
  uint64_t generation_ = 0;
};

// The barrier of the threadgroup the calling thread runs (threadgroup_barrier_wait()).
thread_local Barrier* t_group_barrier = nullptr;

// One dispatch as encoded.
struct Command {
  const HostKernel* kernel;
  void* buffers[kSlots];
  uint32_t groups[3];
  uint32_t threads[3];
};

ThreadIds ids_of(const Command& c, uint64_t group, uint32_t local) {
  ThreadIds ids{};
  const uint32_t tg[3] = {static_cast<uint32_t>(group % c.groups[0]),
                          static_cast<uint32_t>(group / c.groups[0] % c.groups[1]),
                          static_cast<uint32_t>(group / c.groups[0] / c.groups[1])};
  const uint32_t lid[3] = {local % c.threads[0], local / c.threads[0] % c.threads[1],
                           local / c.threads[0] / c.threads[1]};
  for (int d = 0; d < 3; ++d) {
    ids.threadgroup_position_in_grid[d] = tg[d];
    ids.thread_position_in_threadgroup[d] = lid[d];
    ids.thread_position_in_grid[d] = tg[d] * c.threads[d] + lid[d];
    ids.threads_per_threadgroup[d] = c.threads[d];
  }
  return ids;
}

// Persistent worker threads (created on first need and kept, so a warm run starts none).
class Executor {
 public:
  Executor() : pool_(std::max(1u, std::min(4u, std::thread::hardware_concurrency()))) {}
  ~Executor() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    start_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  void run(const Command& c) {
    const uint64_t groups = static_cast<uint64_t>(c.groups[0]) * c.groups[1] * c.groups[2];
    const uint32_t threads = c.threads[0] * c.threads[1] * c.threads[2];
    if (groups == 0 || threads == 0) return;
    command_ = &c;
    next_group_.store(0);
    if (c.kernel->uses_threadgroup_memory) {
      group_barrier_.reset(threads);
      start_job(threads, true);
    } else {
      start_job(static_cast<uint32_t>(std::min<uint64_t>(pool_, groups)), false);
    }
  }

 private:
  void start_job(uint32_t workers, bool cooperative) {
    while (workers_.size() < workers) {  // job_ is written by this thread only
      const uint32_t index = static_cast<uint32_t>(workers_.size());
      workers_.emplace_back([this, index, seen = job_] { work(index, seen); });
    }
    std::unique_lock<std::mutex> lock(mutex_);
    job_workers_ = workers;
    cooperative_ = cooperative;
    remaining_ = workers;
    ++job_;
    start_.notify_all();
    done_.wait(lock, [&] { return remaining_ == 0; });
  }

  // `seen`: the last job started before this worker was created (it joins the next one).
  void work(uint32_t index, uint64_t seen) {
    for (;;) {
      bool cooperative = false;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        start_.wait(lock, [&] { return stop_ || job_ != seen; });
        if (stop_) return;
        seen = job_;
        if (index >= job_workers_) continue;
        cooperative = cooperative_;
      }
      const Command& c = *command_;
      const uint64_t groups = static_cast<uint64_t>(c.groups[0]) * c.groups[1] * c.groups[2];
      if (cooperative) {
        // Invocation `index` of every threadgroup, one group at a time: the closing barrier keeps
        // any invocation from starting group g + 1 (and reusing the threadgroup arrays) before
        // every invocation finished group g.
        t_group_barrier = &group_barrier_;
        for (uint64_t g = 0; g < groups; ++g) {
          c.kernel->entry(c.buffers, ids_of(c, g, index));
          group_barrier_.wait();
        }
        t_group_barrier = nullptr;
      } else {
        const uint32_t threads = c.threads[0] * c.threads[1] * c.threads[2];
        for (uint64_t g; (g = next_group_.fetch_add(1)) < groups;) {
          for (uint32_t l = 0; l < threads; ++l) c.kernel->entry(c.buffers, ids_of(c, g, l));
        }
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (--remaining_ == 0) done_.notify_one();
    }
  }

  const uint32_t pool_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  uint64_t job_ = 0;
  uint32_t job_workers_ = 0, remaining_ = 0;
  bool cooperative_ = false, stop_ = false;
  const Command* command_ = nullptr;
  std::atomic<uint64_t> next_group_{0};
  Barrier group_barrier_;
};

class HostBuffer final : public metal::Buffer {
 public:
  explicit HostBuffer(size_t bytes) : data_(bytes, 0) {}
  void* contents() override { return data_.data(); }
  size_t length() const override { return data_.size(); }

 private:
  std::vector<uint8_t> data_;  // operator new's alignment (16 bytes) suits float4 / half4 cells
};

class HostPipeline final : public metal::Pipeline {
 public:
  HostPipeline(const HostKernel* kernel, uint32_t max_threads) : kernel_(kernel), max_threads_(max_threads) {}
  uint32_t max_total_threads_per_threadgroup() const override { return max_threads_; }
  uint32_t thread_execution_width() const override { return kSimdWidth; }
  const HostKernel* kernel() const { return kernel_; }

 private:
  const HostKernel* kernel_;
  uint32_t max_threads_;
};

class HostArchive final : public metal::PipelineArchive {
 public:
  explicit HostArchive(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    std::string line;
    bool valid = static_cast<bool>(std::getline(in, line)) && line == kMagic;
    while (valid && std::getline(in, line)) functions_.insert(line);
  }
  bool holds(const std::string& function) const { return functions_.count(function) != 0; }
  void add(const std::string& function) { functions_.insert(function); }
  bool serialize(std::string* error) override {
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp);
      out << kMagic << "\n";
      for (const std::string& f : functions_) out << f << "\n";
      if (!out.flush()) {
        if (error) *error = "cannot write " + tmp;
        std::remove(tmp.c_str());
        return false;
      }
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
      if (error) *error = "cannot write " + path_;
      std::remove(tmp.c_str());
      return false;
    }
    return true;
  }

 private:
  static constexpr const char* kMagic = "mobilegen host binary archive 1";
  std::string path_;
  std::set<std::string> functions_;
};

class HostLibrary final : public metal::Library {
 public:
  explicit HostLibrary(std::string source) : source_(std::move(source)) {}
  std::unique_ptr<metal::Pipeline> new_pipeline(const char* function, metal::PipelineArchive* archive,
                                                bool* from_archive, std::string* error) override {
    *from_archive = false;
    // The function must be one the library's source declares, and one compiled into this host.
    const std::string declared = std::string("kernel void ") + function + "(";
    const HostKernel* kernel = nullptr;
    for (int i = 0; i < kNumHostKernels; ++i) {
      if (std::strcmp(kHostKernels[i].name, function) == 0) kernel = &kHostKernels[i];
    }
    if (source_.find(declared) == std::string::npos || kernel == nullptr) {
      if (error) *error = std::string("function ") + function + " not found in the library";
      return nullptr;
    }
    if (auto* a = static_cast<HostArchive*>(archive)) {
      *from_archive = a->holds(function);
      if (!*from_archive) a->add(function);
    }
    return std::unique_ptr<metal::Pipeline>(new HostPipeline(kernel, max_threads_per_threadgroup()));
  }

 private:
  std::string source_;
};

class HostEncoder final : public metal::ComputeEncoder {
 public:
  explicit HostEncoder(std::vector<Command>* commands) : commands_(commands) {}
  void set_pipeline(const metal::Pipeline& pipeline) override {
    pipeline_ = static_cast<const HostPipeline*>(&pipeline);
  }
  void set_buffer(metal::Buffer* buffer, uint32_t slot) override {
    if (slot < kSlots) slots_[slot] = buffer != nullptr ? buffer->contents() : nullptr;
  }
  void dispatch_threadgroups(const uint32_t groups[3], const uint32_t threads[3]) override {
    Command c{};
    c.kernel = pipeline_ != nullptr ? pipeline_->kernel() : nullptr;
    std::copy(slots_, slots_ + kSlots, c.buffers);
    std::copy(groups, groups + 3, c.groups);
    std::copy(threads, threads + 3, c.threads);
    const uint64_t total = static_cast<uint64_t>(threads[0]) * threads[1] * threads[2];
    if (c.kernel == nullptr) {
      fault_ = "dispatch without a pipeline";
    } else if (total > pipeline_->max_total_threads_per_threadgroup()) {
      fault_ = std::string(c.kernel->name) + ": " + std::to_string(total) +
               " threads per threadgroup exceed maxTotalThreadsPerThreadgroup " +
               std::to_string(pipeline_->max_total_threads_per_threadgroup());
    } else {
      commands_->push_back(c);  // capacity kept between command buffers
    }
  }
  void barrier() override {}  // commands run one after another: nothing to order
  void end_encoding() override { pipeline_ = nullptr; }

  void begin() {
    pipeline_ = nullptr;
    std::fill(slots_, slots_ + kSlots, nullptr);
    fault_.clear();
  }
  const std::string& fault() const { return fault_; }

 private:
  std::vector<Command>* commands_;
  const HostPipeline* pipeline_ = nullptr;
  void* slots_[kSlots] = {};
  std::string fault_;
};

class HostCommandBuffer final : public metal::CommandBuffer {
 public:
  HostCommandBuffer() : encoder_(&commands_) {}
  metal::ComputeEncoder& compute_encoder() override { return encoder_; }
  bool commit_and_wait(std::string* error) override {
    if (!encoder_.fault().empty()) {
      if (error) *error = encoder_.fault();
      return false;
    }
    for (const Command& c : commands_) executor_.run(c);
    commands_.clear();
    return true;
  }
  void begin() {
    commands_.clear();
    encoder_.begin();
  }

 private:
  std::vector<Command> commands_;
  HostEncoder encoder_;
  Executor executor_;
};

class HostDevice final : public metal::Device {
 public:
  std::string name() const override { return "mobilegen host executor (Metal kernels as C++ on the CPU)"; }
  std::unique_ptr<metal::Buffer> new_buffer(size_t bytes, const void* data, std::string*) override {
    std::unique_ptr<metal::Buffer> b(new HostBuffer(std::max<size_t>(bytes, 1)));
    if (data != nullptr) std::memcpy(b->contents(), data, bytes);
    return b;
  }
  std::unique_ptr<metal::Library> new_library(const char* source, std::string* error) override {
    if (source == nullptr || *source == '\0') {
      if (error) *error = "empty library source";
      return nullptr;
    }
    return std::unique_ptr<metal::Library>(new HostLibrary(source));
  }
  std::unique_ptr<metal::PipelineArchive> open_archive(const std::string& path, std::string*) override {
    return std::unique_ptr<metal::PipelineArchive>(new HostArchive(path));
  }
  // One command buffer object, reused: the engine waits for each before asking for the next.
  metal::CommandBuffer* command_buffer(std::string*) override {
    command_buffer_.begin();
    return &command_buffer_;
  }

 private:
  HostCommandBuffer command_buffer_;
};

}  // namespace

void threadgroup_barrier_wait() {
  if (t_group_barrier != nullptr) t_group_barrier->wait();
}

}  // namespace metal_host

namespace metal {

std::unique_ptr<Device> create_system_default_device(std::string*) {
  return std::unique_ptr<Device>(new metal_host::HostDevice());
}

}  // namespace metal
}  // namespace mobilegen
