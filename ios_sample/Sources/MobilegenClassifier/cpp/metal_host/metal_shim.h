// mobilegen host proof of the iOS target: just enough of the Metal Shading Language for the
// generated kernels.metal to compile as C++17 with clang (>= 15) on the host and compute what it
// computes on an Apple GPU. Host only: neither Xcode nor SwiftPM compiles this directory.
//
//   clang++ -std=c++17 -Wno-unknown-attributes -ffp-contract=off \
//           -Xclang -ffloat16-excess-precision=none metal_kernels_host.cpp ...
//
// - half is _Float16; with excess precision off every half operation rounds to half, as on the
//   GPU; float -> half conversions round to nearest even, like Metal's and numpy's.
// - Vectors are clang ext_vector_type (swizzles, component-wise arithmetic); the Metal
//   constructors (float4(x), int4(a, b, c, d), float4(half4_value), ...) are function-like macros
//   over mgshim::make, so the type names still work as types.
// - Address-space qualifiers vanish (device, thread) or become const (constant); a threadgroup
//   array, declared in a kernel body, becomes a function static shared by every invocation of the
//   running threadgroup (host_kernels.h: the executor runs one threadgroup at a time, one thread
//   per invocation, and threadgroup_barrier() waits for all of them).
// - [[buffer(n)]] and friends are attributes clang ignores (-Wno-unknown-attributes).
// - Float contraction is off for the whole translation unit (as `#pragma METAL fp contract(off)`
//   in the library asks of Apple's compiler).
#pragma once

// Standard headers first: the qualifier macros below would break them.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "host_kernels.h"

#pragma clang fp contract(off)

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
static_assert(sizeof(long) == 8, "Metal's long is 64-bit");
typedef _Float16 half;

#define MGSHIM_VECTORS(T, name)                                 \
  typedef T name##2 __attribute__((ext_vector_type(2)));        \
  typedef T name##3 __attribute__((ext_vector_type(3)));        \
  typedef T name##4 __attribute__((ext_vector_type(4)));
MGSHIM_VECTORS(signed char, char)
MGSHIM_VECTORS(uchar, uchar)
MGSHIM_VECTORS(short, short)
MGSHIM_VECTORS(ushort, ushort)
MGSHIM_VECTORS(int, int)
MGSHIM_VECTORS(uint, uint)
MGSHIM_VECTORS(long, long)
MGSHIM_VECTORS(ulong, ulong)
MGSHIM_VECTORS(half, half)
MGSHIM_VECTORS(float, float)
#undef MGSHIM_VECTORS

namespace mgshim {

// The element type and lane count of a scalar (1 lane) or vector type.
template <typename T>
struct traits {
  using elem = T;
  static constexpr int n = 1;
};
#define MGSHIM_TRAITS(name, T)                                   \
  template <> struct traits<name##2> { using elem = T; static constexpr int n = 2; }; \
  template <> struct traits<name##3> { using elem = T; static constexpr int n = 3; }; \
  template <> struct traits<name##4> { using elem = T; static constexpr int n = 4; };
MGSHIM_TRAITS(char, signed char)
MGSHIM_TRAITS(uchar, uchar)
MGSHIM_TRAITS(short, short)
MGSHIM_TRAITS(ushort, ushort)
MGSHIM_TRAITS(int, int)
MGSHIM_TRAITS(uint, uint)
MGSHIM_TRAITS(long, long)
MGSHIM_TRAITS(ulong, ulong)
MGSHIM_TRAITS(half, half)
MGSHIM_TRAITS(float, float)
#undef MGSHIM_TRAITS

template <typename T>
constexpr int lanes = traits<std::remove_cv_t<std::remove_reference_t<T>>>::n;
template <typename T>
using elem_t = typename traits<std::remove_cv_t<std::remove_reference_t<T>>>::elem;

template <typename E, typename A>
inline void append(E* out, int& k, const A& a) {
  if constexpr (lanes<A> == 1) {
    out[k++] = static_cast<E>(a);
  } else {
    for (int i = 0; i < lanes<A>; ++i) out[k++] = static_cast<E>(a[i]);
  }
}

// Metal's vector constructors: one scalar splats, one vector of as many lanes converts lane by
// lane, otherwise the arguments' lanes are concatenated (and must fill the vector exactly).
template <typename V, typename... A>
inline V make(const A&... a) {
  using E = elem_t<V>;
  constexpr int n = lanes<V>;
  E lanes_[n];
  if constexpr (sizeof...(A) == 1 && (lanes<A> + ...) == 1) {
    E v{};
    ((v = static_cast<E>(a)), ...);
    for (int i = 0; i < n; ++i) lanes_[i] = v;
  } else {
    static_assert((lanes<A> + ...) == n, "a vector constructor's arguments must fill it");
    int k = 0;
    (append(lanes_, k, a), ...);
  }
  if constexpr (n == 1) {
    return lanes_[0];
  } else {
    V v;
    for (int i = 0; i < n; ++i) v[i] = lanes_[i];
    return v;
  }
}

// Applies f lane by lane (scalars: once).
template <typename T, typename F>
inline T lanewise(const T& a, const T& b, const T& c, F f) {
  if constexpr (lanes<T> == 1) {
    return f(a, b, c);
  } else {
    T r;
    for (int i = 0; i < lanes<T>; ++i) r[i] = f(a[i], b[i], c[i]);
    return r;
  }
}

}  // namespace mgshim

#define char2(...) ::mgshim::make<::char2>(__VA_ARGS__)
#define char3(...) ::mgshim::make<::char3>(__VA_ARGS__)
#define char4(...) ::mgshim::make<::char4>(__VA_ARGS__)
#define uchar2(...) ::mgshim::make<::uchar2>(__VA_ARGS__)
#define uchar3(...) ::mgshim::make<::uchar3>(__VA_ARGS__)
#define uchar4(...) ::mgshim::make<::uchar4>(__VA_ARGS__)
#define short2(...) ::mgshim::make<::short2>(__VA_ARGS__)
#define short3(...) ::mgshim::make<::short3>(__VA_ARGS__)
#define short4(...) ::mgshim::make<::short4>(__VA_ARGS__)
#define ushort2(...) ::mgshim::make<::ushort2>(__VA_ARGS__)
#define ushort3(...) ::mgshim::make<::ushort3>(__VA_ARGS__)
#define ushort4(...) ::mgshim::make<::ushort4>(__VA_ARGS__)
#define int2(...) ::mgshim::make<::int2>(__VA_ARGS__)
#define int3(...) ::mgshim::make<::int3>(__VA_ARGS__)
#define int4(...) ::mgshim::make<::int4>(__VA_ARGS__)
#define uint2(...) ::mgshim::make<::uint2>(__VA_ARGS__)
#define uint3(...) ::mgshim::make<::uint3>(__VA_ARGS__)
#define uint4(...) ::mgshim::make<::uint4>(__VA_ARGS__)
#define long2(...) ::mgshim::make<::long2>(__VA_ARGS__)
#define long3(...) ::mgshim::make<::long3>(__VA_ARGS__)
#define long4(...) ::mgshim::make<::long4>(__VA_ARGS__)
#define ulong2(...) ::mgshim::make<::ulong2>(__VA_ARGS__)
#define ulong3(...) ::mgshim::make<::ulong3>(__VA_ARGS__)
#define ulong4(...) ::mgshim::make<::ulong4>(__VA_ARGS__)
#define half2(...) ::mgshim::make<::half2>(__VA_ARGS__)
#define half3(...) ::mgshim::make<::half3>(__VA_ARGS__)
#define half4(...) ::mgshim::make<::half4>(__VA_ARGS__)
#define float2(...) ::mgshim::make<::float2>(__VA_ARGS__)
#define float3(...) ::mgshim::make<::float3>(__VA_ARGS__)
#define float4(...) ::mgshim::make<::float4>(__VA_ARGS__)

// The Metal standard library functions the kernels call, with Metal's semantics. Templates, so
// that an exact non-template match from the C library (abs(int)) never makes a call ambiguous.
namespace metal {

// as_type<T>(x): the same bits as another type of the same size.
template <typename T, typename F>
inline T as_type(const F& from) {
  static_assert(sizeof(T) == sizeof(F), "as_type between types of different sizes");
  T to;
  std::memcpy(&to, &from, sizeof(T));
  return to;
}

template <typename T>
inline T min(T a, T b) {
  return mgshim::lanewise(a, b, b, [](auto x, auto y, auto) {
    if constexpr (std::is_floating_point_v<decltype(x)>) return static_cast<decltype(x)>(std::fmin(x, y));
    else return y < x ? y : x;
  });
}
template <typename T>
inline T max(T a, T b) {
  return mgshim::lanewise(a, b, b, [](auto x, auto y, auto) {
    if constexpr (std::is_floating_point_v<decltype(x)>) return static_cast<decltype(x)>(std::fmax(x, y));
    else return y > x ? y : x;
  });
}
// clamp(x, lo, hi) = min(max(x, lo), hi), lane by lane.
template <typename T>
inline T clamp(T x, T lo, T hi) {
  return min(max(x, lo), hi);
}
// abs of an integer: the magnitude, wrapping for INT_MIN as Metal's does.
template <typename T>
inline T abs(T a) {
  return mgshim::lanewise(a, a, a, [](auto x, auto, auto) {
    using E = decltype(x);
    if constexpr (std::is_floating_point_v<E>) {
      return static_cast<E>(std::fabs(x));
    } else {
      using U = std::make_unsigned_t<E>;
      return static_cast<E>(x < 0 ? U(0) - U(x) : U(x));
    }
  });
}
// select(a, b, c): c ? b : a (scalar condition).
template <typename T>
inline T select(T a, T b, bool c) {
  return c ? b : a;
}
template <typename T>
inline mgshim::elem_t<T> dot(T a, T b) {
  mgshim::elem_t<T> sum = a[0] * b[0];
  for (int i = 1; i < mgshim::lanes<T>; ++i) sum = sum + a[i] * b[i];
  return sum;
}
template <typename T>
inline T exp(T a) {
  return mgshim::lanewise(a, a, a, [](auto x, auto, auto) { return static_cast<decltype(x)>(std::exp(float(x))); });
}
// The high 32 (64) bits of the full product.
template <typename T>
inline T mulhi(T a, T b) {
  return mgshim::lanewise(a, b, b, [](auto x, auto y, auto) {
    using E = decltype(x);
    static_assert(std::is_integral_v<E> && sizeof(E) <= 4, "mulhi: 32-bit lanes or narrower");
    using W = std::conditional_t<std::is_signed_v<E>, int64_t, uint64_t>;
    return static_cast<E>((W(x) * W(y)) >> (8 * sizeof(E)));
  });
}
// Leading zero bits (the bit width for 0).
template <typename T>
inline T clz(T a) {
  return mgshim::lanewise(a, a, a, [](auto x, auto, auto) {
    using E = decltype(x);
    using U = std::make_unsigned_t<E>;
    constexpr int bits = 8 * sizeof(E);
    U u = U(x);
    int n = 0;
    for (int i = bits - 1; i >= 0 && !((u >> i) & 1u); --i) ++n;
    return static_cast<E>(n);
  });
}
template <typename T>
inline T popcount(T a) {
  return mgshim::lanewise(a, a, a, [](auto x, auto, auto) {
    using U = std::make_unsigned_t<decltype(x)>;
    return static_cast<decltype(x)>(__builtin_popcountll(static_cast<unsigned long long>(U(x))));
  });
}

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };

// Every invocation of the running threadgroup waits here for all the others.
inline void threadgroup_barrier(mem_flags) {
  mobilegen::metal_host::threadgroup_barrier_wait();
}

}  // namespace metal

// Qualifiers and function specifiers (after every standard header).
#define kernel
#define device
#define thread
#define constant const
#define threadgroup static
