#include "blob.h"

#include <cstring>

namespace mobilegen {
namespace {

constexpr uint8_t kMagic[4] = {'M', 'G', 'W', 'B'};
constexpr size_t kPlanHashSize = 16;

uint32_t read_u32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

uint64_t read_u64(const uint8_t* p) { return uint64_t{read_u32(p)} | (uint64_t{read_u32(p + 4)} << 32); }

struct Crc32Table {
  uint32_t entries[256];
  Crc32Table() {
    constexpr uint32_t kPolynomial = 0xEDB88320u;  // zlib's, bit-reversed
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (kPolynomial ^ (c >> 1)) : (c >> 1);
      entries[i] = c;
    }
  }
};

bool fail(std::string* error, const std::string& message) {
  if (error) *error = "weights blob: " + message;
  return false;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size) {
  static const Crc32Table table;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table.entries[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

int kernel_blob_refs(const Kernel& k, BlobRef* refs) {
  if (k.params == nullptr) return 0;
  switch (k.type) {
    case KernelType::Conv2D:
    case KernelType::DepthwiseConv2D: {
      const auto& p = *static_cast<const ConvParams*>(k.params);
      refs[0] = p.weights;
      refs[1] = p.bias;
      refs[2] = p.out.multipliers;
      refs[3] = p.out.shifts;
      return 4;
    }
    case KernelType::FullyConnected: {
      const auto& p = *static_cast<const FullyConnectedParams*>(k.params);
      refs[0] = p.weights;
      refs[1] = p.bias;
      refs[2] = p.scales;
      return 3;
    }
    default:
      return 0;
  }
}

Status validate_blob(const ModelPlan& plan, const void* blob, size_t blob_size,
                     const uint8_t** payload, size_t* payload_size, std::string* error) {
  const auto* bytes = static_cast<const uint8_t*>(blob);
  auto invalid = [&](const std::string& message) {
    fail(error, message);
    return Status::InvalidBlob;
  };
  if (bytes == nullptr) return invalid("no data");
  if (blob_size < kBlobHeaderSize) {
    return invalid(std::to_string(blob_size) + " bytes, shorter than its " +
                   std::to_string(kBlobHeaderSize) + "-byte header");
  }
  if (std::memcmp(bytes, kMagic, sizeof kMagic) != 0) return invalid("bad magic, expected \"MGWB\"");
  const uint32_t version = read_u32(bytes + 4);
  const uint32_t header_size = read_u32(bytes + 8);
  if (version != kBlobVersion || version != plan.blob_version || header_size != kBlobHeaderSize) {
    return invalid("version " + std::to_string(version) + " header " + std::to_string(header_size) +
                   ", expected " + std::to_string(plan.blob_version) + " and " +
                   std::to_string(kBlobHeaderSize));
  }
  const uint64_t size = read_u64(bytes + 16);
  if (size != blob_size - kBlobHeaderSize) {
    return invalid("header says " + std::to_string(size + kBlobHeaderSize) + " bytes, got " +
                   std::to_string(blob_size));
  }
  const uint8_t* data = bytes + kBlobHeaderSize;
  if (crc32(data, static_cast<size_t>(size)) != read_u32(bytes + 24)) {
    return invalid("checksum mismatch (corrupt file)");
  }
  if (std::memcmp(bytes + 32, plan.blob_plan_hash, kPlanHashSize) != 0) {
    return invalid(std::string("plan hash differs from the engine's: the blob belongs to another model "
                               "or another generation of ") + plan.model_name);
  }
  for (int i = 0; i < plan.num_kernels; ++i) {
    BlobRef refs[kMaxBlobRefs] = {};
    const int n = kernel_blob_refs(plan.kernels[i], refs);
    for (int r = 0; r < n; ++r) {
      if (uint64_t{refs[r].offset} + refs[r].size > size) {
        return invalid("kernel " + std::to_string(i) + " (op " +
                       std::to_string(plan.kernels[i].op_index) + ") refers to bytes " +
                       std::to_string(refs[r].offset) + ".." +
                       std::to_string(uint64_t{refs[r].offset} + refs[r].size) + " of a " +
                       std::to_string(size) + "-byte payload");
      }
    }
  }
  *payload = data;
  *payload_size = static_cast<size_t>(size);
  return Status::Ok;
}

}  // namespace mobilegen
