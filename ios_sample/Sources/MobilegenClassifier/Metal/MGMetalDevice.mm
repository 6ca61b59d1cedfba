// mobilegen engine: the Metal-shaped interface of cpp/engine/metal_api.h over real Metal.
//
// Deliberately thin: every decision (which kernel, which buffers in which slots, grid and
// threadgroup sizes, when to wait) is made by the C++ backend in cpp/engine/metal_backend.cpp,
// which the host proof (`mobilegen verify`) runs on Linux against the host implementation of the
// same interface. This file only forwards each call to the Metal object it names. It is the one
// part of the engine that cannot run off an Apple device.
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>

#include <memory>
#include <string>

#include "../cpp/engine/metal_api.h"

namespace mobilegen {
namespace metal {
namespace {

std::string text_of(NSError* _Nullable error, const char* fallback) {
  NSString* description = error.localizedDescription;
  return description.length > 0 ? std::string(description.UTF8String) : std::string(fallback);
}

class MGBuffer final : public Buffer {
 public:
  explicit MGBuffer(id<MTLBuffer> buffer) : buffer_(buffer) {}
  void* contents() override { return buffer_.contents; }
  size_t length() const override { return buffer_.length; }
  id<MTLBuffer> buffer() const { return buffer_; }

 private:
  id<MTLBuffer> buffer_;
};

class MGPipeline final : public Pipeline {
 public:
  explicit MGPipeline(id<MTLComputePipelineState> state) : state_(state) {}
  uint32_t max_total_threads_per_threadgroup() const override {
    return static_cast<uint32_t>(state_.maxTotalThreadsPerThreadgroup);
  }
  uint32_t thread_execution_width() const override { return static_cast<uint32_t>(state_.threadExecutionWidth); }
  id<MTLComputePipelineState> state() const { return state_; }

 private:
  id<MTLComputePipelineState> state_;
};

class MGArchive final : public PipelineArchive {
 public:
  MGArchive(id<MTLBinaryArchive> archive, NSURL* url) : archive_(archive), url_(url) {}
  bool serialize(std::string* error) override {
    NSError* e = nil;
    if ([archive_ serializeToURL:url_ error:&e]) return true;
    if (error != nullptr) *error = text_of(e, "cannot write the binary archive");
    return false;
  }
  id<MTLBinaryArchive> archive() const { return archive_; }

 private:
  id<MTLBinaryArchive> archive_;
  NSURL* url_;
};

class MGLibrary final : public Library {
 public:
  MGLibrary(id<MTLDevice> device, id<MTLLibrary> library) : device_(device), library_(library) {}
  std::unique_ptr<Pipeline> new_pipeline(const char* function, PipelineArchive* archive, bool* from_archive,
                                         std::string* error) override {
    @autoreleasepool {
      *from_archive = false;
      id<MTLFunction> f = [library_ newFunctionWithName:@(function)];
      if (f == nil) {
        if (error != nullptr) *error = std::string("function ") + function + " not found in the library";
        return nullptr;
      }
      MTLComputePipelineDescriptor* descriptor = [MTLComputePipelineDescriptor new];
      descriptor.computeFunction = f;
      NSError* e = nil;
      id<MTLComputePipelineState> state = nil;
      id<MTLBinaryArchive> a = archive != nullptr ? static_cast<MGArchive*>(archive)->archive() : nil;
      if (a != nil) {
        descriptor.binaryArchives = @[ a ];
        state = [device_ newComputePipelineStateWithDescriptor:descriptor
                                                       options:MTLPipelineOptionFailOnBinaryArchiveMiss
                                                    reflection:nullptr
                                                         error:&e];
        *from_archive = state != nil;
        if (state == nil) [a addComputePipelineFunctionsWithDescriptor:descriptor error:nullptr];  // best effort
      }
      if (state == nil) {
        e = nil;
        state = [device_ newComputePipelineStateWithDescriptor:descriptor
                                                       options:MTLPipelineOptionNone
                                                    reflection:nullptr
                                                         error:&e];
      }
      if (state == nil) {
        if (error != nullptr) *error = text_of(e, "no compute pipeline");
        return nullptr;
      }
      return std::unique_ptr<Pipeline>(new MGPipeline(state));
    }
  }

 private:
  id<MTLDevice> device_;
  id<MTLLibrary> library_;
};

class MGEncoder final : public ComputeEncoder {
 public:
  void set_pipeline(const Pipeline& pipeline) override {
    [encoder_ setComputePipelineState:static_cast<const MGPipeline&>(pipeline).state()];
  }
  void set_buffer(Buffer* buffer, uint32_t slot) override {
    [encoder_ setBuffer:buffer != nullptr ? static_cast<MGBuffer*>(buffer)->buffer() : nil offset:0 atIndex:slot];
  }
  void dispatch_threadgroups(const uint32_t groups[3], const uint32_t threads[3]) override {
    [encoder_ dispatchThreadgroups:MTLSizeMake(groups[0], groups[1], groups[2])
             threadsPerThreadgroup:MTLSizeMake(threads[0], threads[1], threads[2])];
  }
  void barrier() override { [encoder_ memoryBarrierWithScope:MTLBarrierScopeBuffers]; }
  void end_encoding() override {
    [encoder_ endEncoding];
    encoder_ = nil;
  }
  void begin(id<MTLComputeCommandEncoder> encoder) { encoder_ = encoder; }

 private:
  id<MTLComputeCommandEncoder> encoder_ = nil;
};

// One C++ object, reused: each command buffer is a new Metal object (that is Metal's model), its
// wrapper is not.
class MGCommandBuffer final : public CommandBuffer {
 public:
  ComputeEncoder& compute_encoder() override { return encoder_; }
  bool commit_and_wait(std::string* error) override {
    [buffer_ commit];
    [buffer_ waitUntilCompleted];
    const bool ok = buffer_.status == MTLCommandBufferStatusCompleted;
    if (!ok && error != nullptr) *error = text_of(buffer_.error, "the command buffer failed");
    buffer_ = nil;
    return ok;
  }
  bool begin(id<MTLCommandQueue> queue) {
    // The pool releases the autoreleased command buffer and encoder on any thread (the strong
    // references here keep them until commit_and_wait).
    @autoreleasepool {
      buffer_ = [queue commandBuffer];
      id<MTLComputeCommandEncoder> encoder = [buffer_ computeCommandEncoder];
      encoder_.begin(encoder);
      return buffer_ != nil && encoder != nil;
    }
  }

 private:
  id<MTLCommandBuffer> buffer_ = nil;
  MGEncoder encoder_;
};

class MGDevice final : public Device {
 public:
  MGDevice(id<MTLDevice> device, id<MTLCommandQueue> queue) : device_(device), queue_(queue) {}
  std::string name() const override { return std::string(device_.name.UTF8String); }

  std::unique_ptr<Buffer> new_buffer(size_t bytes, const void* data, std::string* error) override {
    id<MTLBuffer> b = data != nullptr
                          ? [device_ newBufferWithBytes:data length:bytes options:MTLResourceStorageModeShared]
                          : [device_ newBufferWithLength:bytes options:MTLResourceStorageModeShared];
    if (b == nil) {
      if (error != nullptr) *error = "newBuffer failed";
      return nullptr;
    }
    return std::unique_ptr<Buffer>(new MGBuffer(b));
  }

  std::unique_ptr<Library> new_library(const char* source, std::string* error) override {
    @autoreleasepool {
      MTLCompileOptions* options = [MTLCompileOptions new];
      // Fast math off: float kernels round as written (NUMERICS.md). languageVersion stays at its
      // default, the newest the OS has: from MSL 3.2 (iOS 18) the library's own
      // `#pragma METAL fp contract(off)` also forbids fused multiply-add within a statement.
      if (@available(iOS 18.0, macOS 15.0, *)) {
        options.mathMode = MTLMathModeSafe;
      } else {
        options.fastMathEnabled = NO;
      }
      NSError* e = nil;
      id<MTLLibrary> library = [device_ newLibraryWithSource:@(source) options:options error:&e];
      if (library == nil) {
        if (error != nullptr) *error = text_of(e, "newLibraryWithSource failed");
        return nullptr;
      }
      return std::unique_ptr<Library>(new MGLibrary(device_, library));
    }
  }

  std::unique_ptr<PipelineArchive> open_archive(const std::string& path, std::string* error) override {
    @autoreleasepool {
      NSURL* url = [NSURL fileURLWithPath:@(path.c_str())];
      MTLBinaryArchiveDescriptor* descriptor = [MTLBinaryArchiveDescriptor new];
      NSError* e = nil;
      id<MTLBinaryArchive> archive = nil;
      if ([[NSFileManager defaultManager] fileExistsAtPath:url.path]) {
        descriptor.url = url;
        archive = [device_ newBinaryArchiveWithDescriptor:descriptor error:&e];
      }
      if (archive == nil) {  // missing or unusable (another OS version, a torn write): start empty
        descriptor.url = nil;
        archive = [device_ newBinaryArchiveWithDescriptor:descriptor error:&e];
      }
      if (archive == nil) {
        if (error != nullptr) *error = text_of(e, "no binary archive");
        return nullptr;
      }
      return std::unique_ptr<PipelineArchive>(new MGArchive(archive, url));
    }
  }

  CommandBuffer* command_buffer(std::string* error) override {
    if (command_buffer_.begin(queue_)) return &command_buffer_;
    if (error != nullptr) *error = "the command queue gave no command buffer";
    return nullptr;
  }

 private:
  id<MTLDevice> device_;
  id<MTLCommandQueue> queue_;
  MGCommandBuffer command_buffer_;
};

}  // namespace

std::unique_ptr<Device> create_system_default_device(std::string* error) {
  id<MTLDevice> device = MTLCreateSystemDefaultDevice();
  if (device == nil) {
    if (error != nullptr) *error = "MTLCreateSystemDefaultDevice returned nil (no Metal GPU)";
    return nullptr;
  }
  id<MTLCommandQueue> queue = [device newCommandQueue];
  if (queue == nil) {
    if (error != nullptr) *error = "newCommandQueue failed";
    return nullptr;
  }
  return std::unique_ptr<Device>(new MGDevice(device, queue));
}

}  // namespace metal
}  // namespace mobilegen
