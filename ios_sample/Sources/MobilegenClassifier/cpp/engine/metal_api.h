// mobilegen engine: the small Metal-shaped interface the Metal backend (metal_backend.cpp) drives.
//
// It mirrors the few Metal objects a compute-only engine needs, one C++ class each, and decides
// nothing: which kernel, which buffers in which slots, grid and threadgroup sizes and when to wait
// are all the backend's. Two implementations:
//   - Metal/MGMetalDevice.mm: a thin Objective-C++ adapter over real Metal (iOS);
//   - metal_host/host_device.cpp: the host proof, running the generated kernels compiled as C++
//     on the CPU (`mobilegen verify` on Linux).
// Whichever the build compiles defines create_system_default_device().
//
// Objects are created once, at Engine::create: the device (and its one command queue), the
// library, the pipelines, every buffer. Per inference the backend asks the device for a command
// buffer (Metal's model: command buffers are transient, one per submission; the adapter reuses its
// C++ wrapper, so nothing is allocated on the C++ heap), encodes, commits and waits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mobilegen {
namespace metal {

// MTLBuffer with MTLResourceStorageModeShared: the CPU reads and writes contents() directly.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* contents() = 0;
  virtual size_t length() const = 0;
};

// MTLComputePipelineState of one kernel function.
class Pipeline {
 public:
  virtual ~Pipeline() = default;
  virtual uint32_t max_total_threads_per_threadgroup() const = 0;
  virtual uint32_t thread_execution_width() const = 0;
};

// MTLBinaryArchive: compiled pipelines kept on disk, so that a warm start skips the back end.
class PipelineArchive {
 public:
  virtual ~PipelineArchive() = default;
  // Writes the archive (with every pipeline created through it) to its file; best effort.
  virtual bool serialize(std::string* error) = 0;
};

// MTLLibrary compiled from source.
class Library {
 public:
  virtual ~Library() = default;
  // The pipeline of kernel function `function`; with `archive`, looked up there first (*from_archive
  // says whether it was found) and added to it otherwise. nullptr and *error on failure.
  virtual std::unique_ptr<Pipeline> new_pipeline(const char* function, PipelineArchive* archive, bool* from_archive,
                                                 std::string* error) = 0;
};

// MTLComputeCommandEncoder (serial dispatch).
class ComputeEncoder {
 public:
  virtual ~ComputeEncoder() = default;
  virtual void set_pipeline(const Pipeline& pipeline) = 0;
  // [[buffer(slot)]]; nullptr unbinds.
  virtual void set_buffer(Buffer* buffer, uint32_t slot) = 0;
  // dispatchThreadgroups:threadsPerThreadgroup:
  virtual void dispatch_threadgroups(const uint32_t groups[3], const uint32_t threads[3]) = 0;
  // memoryBarrierWithScope:MTLBarrierScopeBuffers: writes before it are visible to dispatches after.
  virtual void barrier() = 0;
  virtual void end_encoding() = 0;
};

// MTLCommandBuffer from the device's one queue.
class CommandBuffer {
 public:
  virtual ~CommandBuffer() = default;
  // One compute encoder per command buffer; valid until end_encoding().
  virtual ComputeEncoder& compute_encoder() = 0;
  // commit + waitUntilCompleted; false with the command buffer's error text on failure.
  virtual bool commit_and_wait(std::string* error) = 0;
};

// MTLDevice with its one MTLCommandQueue.
class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;  // MTLDevice.name
  // A shared-storage buffer of `bytes` (at least 1), initialised from `data` when not null.
  virtual std::unique_ptr<Buffer> new_buffer(size_t bytes, const void* data, std::string* error) = 0;
  // newLibraryWithSource with fast math off (math mode safe).
  virtual std::unique_ptr<Library> new_library(const char* source, std::string* error) = 0;
  // The binary archive stored at `path` (created empty when the file is missing or unusable);
  // nullptr where the platform has none.
  virtual std::unique_ptr<PipelineArchive> open_archive(const std::string& path, std::string* error) = 0;
  // A new command buffer on the queue; owned by the device, valid until commit_and_wait() returns.
  // Nullptr and *error when the queue gives none.
  virtual CommandBuffer* command_buffer(std::string* error) = 0;
};

// The platform's default Metal device (MTLCreateSystemDefaultDevice); nullptr and *error where
// there is none.
std::unique_ptr<Device> create_system_default_device(std::string* error);

}  // namespace metal
}  // namespace mobilegen
