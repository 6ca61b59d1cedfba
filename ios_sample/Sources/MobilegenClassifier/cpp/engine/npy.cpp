#include "npy.h"

#include <cstdio>
#include <cstring>
#include <memory>

namespace mobilegen {
namespace npy {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kHeaderAlign = 64;  // numpy pads the header so the data starts aligned
constexpr size_t kMaxHeader = 1 << 16;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

const char* descr(Type t) {
  switch (t) {
    case Type::Int8: return "|i1";
    case Type::UInt8: return "|u1";
    case Type::Int32: return "<i4";
    case Type::Float32: return "<f4";
  }
  return "";
}

bool parse_descr(const std::string& d, Type* t) {
  if (d == "|i1" || d == "<i1" || d == "=i1") *t = Type::Int8;
  else if (d == "|u1" || d == "<u1" || d == "=u1") *t = Type::UInt8;
  else if (d == "<i4") *t = Type::Int32;
  else if (d == "<f4") *t = Type::Float32;
  else return false;
  return true;
}

// The quoted value after 'key': in numpy's header dict, or the raw text up to the next ',' / '}'.
bool dict_value(const std::string& header, const std::string& key, std::string* value) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return false;
  size_t p = header.find(':', k);
  if (p == std::string::npos) return false;
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) return false;
  if (header[p] == '\'') {
    const size_t end = header.find('\'', p + 1);
    if (end == std::string::npos) return false;
    *value = header.substr(p + 1, end - p - 1);
  } else if (header[p] == '(') {
    const size_t end = header.find(')', p);
    if (end == std::string::npos) return false;
    *value = header.substr(p + 1, end - p - 1);
  } else {
    size_t end = p;
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
    *value = header.substr(p, end - p);
  }
  return true;
}

bool parse_shape(const std::string& text, std::vector<int64_t>* shape) {
  shape->clear();
  size_t p = 0;
  while (p < text.size()) {
    while (p < text.size() && (text[p] == ' ' || text[p] == ',')) ++p;
    if (p >= text.size()) break;
    if (text[p] < '0' || text[p] > '9') return false;
    int64_t v = 0;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9') {
      v = v * 10 + (text[p] - '0');
      if (v > (int64_t{1} << 40)) return false;
      ++p;
    }
    shape->push_back(v);
  }
  return true;
}

}  // namespace

const char* type_name(Type t) {
  switch (t) {
    case Type::Int8: return "int8";
    case Type::UInt8: return "uint8";
    case Type::Int32: return "int32";
    case Type::Float32: return "float32";
  }
  return "?";
}

size_t type_size(Type t) { return t == Type::Int32 || t == Type::Float32 ? 4 : 1; }

bool read(const std::string& path, Array* out, std::string* error) {
  auto fail = [&](const std::string& why) {
    *error = path + ": " + why;
    return false;
  };
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return fail("cannot open");
  unsigned char pre[kMagicSize + 2];
  if (std::fread(pre, 1, sizeof pre, f.get()) != sizeof pre || std::memcmp(pre, kMagic, kMagicSize) != 0) {
    return fail("not a .npy file");
  }
  const int major = pre[kMagicSize];
  size_t header_len = 0;
  unsigned char len[4] = {0, 0, 0, 0};
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (major < 1 || major > 3) return fail("unsupported .npy version " + std::to_string(major));
  if (std::fread(len, 1, len_bytes, f.get()) != len_bytes) return fail("truncated header");
  for (size_t i = 0; i < len_bytes; ++i) header_len |= size_t{len[i]} << (8 * i);
  if (header_len > kMaxHeader) return fail("header too large");
  std::string header(header_len, '\0');
  if (std::fread(&header[0], 1, header_len, f.get()) != header_len) return fail("truncated header");
  std::string d, fortran, shape_text;
  if (!dict_value(header, "descr", &d) || !dict_value(header, "fortran_order", &fortran) ||
      !dict_value(header, "shape", &shape_text)) {
    return fail("malformed header");
  }
  if (!parse_descr(d, &out->type)) return fail("dtype " + d + " is not int8, uint8, int32 or float32");
  if (fortran.find("False") == std::string::npos) return fail("Fortran-order arrays are not supported");
  if (!parse_shape(shape_text, &out->shape)) return fail("malformed shape (" + shape_text + ")");
  size_t count = 1;
  for (int64_t s : out->shape) count *= static_cast<size_t>(s);
  const size_t bytes = count * type_size(out->type);
  out->data.resize(bytes);
  if (bytes && std::fread(out->data.data(), 1, bytes, f.get()) != bytes) {
    return fail("truncated data: expected " + std::to_string(bytes) + " bytes");
  }
  return true;
}

bool write(const std::string& path, Type type, const int64_t* shape, int rank, const void* data,
           size_t bytes, std::string* error) {
  std::string dict = std::string("{'descr': '") + descr(type) + "', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < rank; ++i) {
    dict += std::to_string(shape[i]);
    if (i + 1 < rank || rank == 1) dict += rank == 1 ? "," : ", ";
  }
  dict += "), }";
  const size_t unpadded = kMagicSize + 2 + 2 + dict.size() + 1;  // + '\n'
  dict.append((kHeaderAlign - unpadded % kHeaderAlign) % kHeaderAlign, ' ');
  dict += '\n';
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) {
    *error = path + ": cannot write";
    return false;
  }
  const unsigned char pre[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                               static_cast<unsigned char>(dict.size() & 0xFF),
                               static_cast<unsigned char>(dict.size() >> 8)};
  bool ok = std::fwrite(pre, 1, sizeof pre, f.get()) == sizeof pre &&
            std::fwrite(dict.data(), 1, dict.size(), f.get()) == dict.size() &&
            (bytes == 0 || std::fwrite(data, 1, bytes, f.get()) == bytes);
  ok = (std::fflush(f.get()) == 0) && ok;
  if (!ok) *error = path + ": write failed";
  return ok;
}

}  // namespace npy
}  // namespace mobilegen
