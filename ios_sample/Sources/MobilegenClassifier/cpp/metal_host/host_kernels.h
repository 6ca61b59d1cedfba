// mobilegen host proof of the iOS target: the generated Metal kernels, compiled as C++ against
// metal_shim.h, as the host implementation of the Metal-shaped interface (host_device.cpp) finds
// them. Host only: neither Xcode nor SwiftPM compiles this directory.
#pragma once

#include <cstdint>

namespace mobilegen {
namespace metal_host {

// The ids of one invocation, as Metal passes them to a kernel's [[...]] parameters.
struct ThreadIds {
  uint32_t thread_position_in_grid[3];
  uint32_t thread_position_in_threadgroup[3];
  uint32_t threadgroup_position_in_grid[3];
  uint32_t threads_per_threadgroup[3];
};

// Calls one kernel function for one invocation; buffers[i] is what [[buffer(i)]] is bound to
// (nullptr for a slot the kernel does not declare).
using KernelEntry = void (*)(void* const* buffers, const ThreadIds& ids);

struct HostKernel {
  const char* name;  // the kernel function's name in the Metal library
  KernelEntry entry;
  // The kernel declares threadgroup memory and calls threadgroup_barrier(): the executor must run
  // every invocation of a threadgroup concurrently (one thread each) and one threadgroup at a
  // time (metal_shim.h makes its threadgroup arrays function statics). Otherwise invocations may
  // run in any order, one after another.
  bool uses_threadgroup_memory;
};

// Defined in the generated metal_kernels_host.cpp (mobilegen/render/metal.py).
extern const HostKernel kHostKernels[];
extern const int kNumHostKernels;

// Called by metal_shim.h's threadgroup_barrier(): waits until every invocation of the running
// threadgroup reached it. Defined by the host executor (host_device.cpp).
void threadgroup_barrier_wait();

}  // namespace metal_host
}  // namespace mobilegen
