// Applies one helper of templates/cpp/engine/fixedpoint.h to every input tuple of a binary file,
// for tests/test_native_numerics.py, which compares the results with mobilegen.numerics.
//
//   fixedpoint_check FUNCTION IN OUT
//
// IN holds little-endian int32 tuples (the function's arity each), OUT receives int32 results
// (get_reciprocal: the Q0.31 scale, then num_bits_over_unit). round_away reads float64 values and
// writes int64 results. Exit status 2: unknown function or unreadable/unwritable file.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fixedpoint.h"

namespace fx = mobilegen::fixedpoint;

namespace {

template <typename T>
bool read_all(const char* path, std::vector<T>* out) {
  FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  T v;
  while (std::fread(&v, sizeof v, 1, f) == 1) out->push_back(v);
  std::fclose(f);
  return true;
}

template <typename T>
bool write_all(const char* path, const std::vector<T>& values) {
  FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  const bool ok = values.empty() || std::fwrite(values.data(), sizeof(T), values.size(), f) == values.size();
  return std::fclose(f) == 0 && ok;
}

struct Function {
  const char* name;
  int arity;
  void (*apply)(const int32_t* a, std::vector<int32_t>* out);
};

const Function kFunctions[] = {
    {"srdhm", 2, [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::srdhm(a[0], a[1])); }},
    {"rdbpot", 2, [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::rdbpot(a[0], a[1])); }},
    {"mbqm", 3, [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::mbqm(a[0], a[1], a[2])); }},
    {"saturating_rounding_mul_by_pot", 2,
     [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::saturating_rounding_mul_by_pot(a[0], a[1])); }},
    {"rounding_half_sum", 2,
     [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::rounding_half_sum(a[0], a[1])); }},
    {"add_wrap", 2, [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::add_wrap(a[0], a[1])); }},
    {"sub_wrap", 2, [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::sub_wrap(a[0], a[1])); }},
    {"shl_wrap", 2, [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::shl_wrap(a[0], a[1])); }},
    {"exp_on_interval_between_negative_one_quarter_and_0_excl", 1,
     [](const int32_t* a, std::vector<int32_t>* o) {
       o->push_back(fx::exp_on_interval_between_negative_one_quarter_and_0_excl(a[0]));
     }},
    {"exp_on_negative_values", 2,
     [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::exp_on_negative_values(a[0], a[1])); }},
    {"one_over_one_plus_x_for_x_in_0_1", 1,
     [](const int32_t* a, std::vector<int32_t>* o) { o->push_back(fx::one_over_one_plus_x_for_x_in_0_1(a[0])); }},
    {"count_leading_zeros_u32", 1,
     [](const int32_t* a, std::vector<int32_t>* o) {
       o->push_back(fx::count_leading_zeros_u32(static_cast<uint32_t>(a[0])));
     }},
    {"get_reciprocal", 2,
     [](const int32_t* a, std::vector<int32_t>* o) {
       int num_bits_over_unit = 0;
       o->push_back(fx::get_reciprocal(a[0], a[1], &num_bits_over_unit));
       o->push_back(num_bits_over_unit);
     }},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: fixedpoint_check FUNCTION IN OUT\n");
    return 2;
  }
  if (std::strcmp(argv[1], "round_away") == 0) {
    std::vector<double> in;
    std::vector<int64_t> out;
    if (!read_all(argv[2], &in)) return 2;
    for (double x : in) out.push_back(fx::round_away(x));
    return write_all(argv[3], out) ? 0 : 2;
  }
  for (const Function& f : kFunctions) {
    if (std::strcmp(argv[1], f.name) != 0) continue;
    std::vector<int32_t> in, out;
    if (!read_all(argv[2], &in) || in.size() % f.arity != 0) return 2;
    out.reserve(in.size() / f.arity * 2);
    for (size_t i = 0; i < in.size(); i += f.arity) f.apply(&in[i], &out);
    return write_all(argv[3], out) ? 0 : 2;
  }
  std::fprintf(stderr, "fixedpoint_check: unknown function %s\n", argv[1]);
  return 2;
}
