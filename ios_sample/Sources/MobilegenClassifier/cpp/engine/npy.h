// mobilegen engine: minimal .npy reading and writing (int8, uint8, int32, float32; C order) for
// the host runner and the debug dumps. Little-endian hosts only (every Android ABI and x86-64).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mobilegen {
namespace npy {

enum class Type { Int8, UInt8, Int32, Float32 };

struct Array {
  Type type = Type::Float32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // element bytes, C order
};

const char* type_name(Type t);  // numpy's dtype name: "int8", "uint8", "int32", "float32"
size_t type_size(Type t);

// Reads `path`; false with *error set on anything but a C-order array of a supported type.
bool read(const std::string& path, Array* out, std::string* error);

// Writes `bytes` of `type` values with `shape` (rank may be 0) to `path`.
bool write(const std::string& path, Type type, const int64_t* shape, int rank, const void* data,
           size_t bytes, std::string* error);

}  // namespace npy
}  // namespace mobilegen
