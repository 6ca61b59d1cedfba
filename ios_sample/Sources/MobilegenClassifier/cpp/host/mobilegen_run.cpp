// mobilegen_run: runs the generated engine on the host (Mesa EGL for the GPU backend).
//
//   mobilegen_run --blob model.mgw --input x.npy [--input x2.npy ...] --output y.npy [--output y2.npy ...]
//                 [--dump-dir D]
//                 [--backend auto|gpu|cpu] [--cache-dir C] [--repeat N]
//                 [--fail-allocations-over BYTES]
//
// A model with several inputs or outputs takes one --input (--output) per graph input (output), in
// the model's order.
// --fail-allocations-over makes every C++ allocation larger than BYTES made while the engine is
// created throw std::bad_alloc (the test of Status::OutOfMemory). When Auto falls back to the
// CPU, a warning line on stderr gives the reason (Engine::backend_info), as the JNI logs it.
//
// Prints one JSON line (backend, the architecture it was built for and whether with NEON, the first
// (cold) run time, the best of all runs and the best of the warm runs after the first, heap
// allocations made by the runs after the first); with --dump-dir writes mobilegen's dump format:
// <tensor index>.npy for the graph inputs and every tensor a kernel writes, and tensors.json
// listing the kernel outputs in graph order (as mobilegen/dump.py does).
// Exit status 0 on success, 1 with one line on stderr on any error.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/npy.h"

// Every heap allocation made through C++ new (the engine's only allocator) is counted, so the
// runner can show that run() allocates nothing once the engine is set up.
namespace {
std::atomic<long> g_allocations{0};
std::atomic<std::size_t> g_allocation_limit{~std::size_t{0}};  // --fail-allocations-over
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (size > g_allocation_limit.load(std::memory_order_relaxed)) throw std::bad_alloc();
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using mobilegen::Backend;
using mobilegen::DType;
using mobilegen::Engine;
using mobilegen::Status;
using mobilegen::TensorInfo;

constexpr const char* kUsage =
    "usage: mobilegen_run --blob model.mgw --input x.npy [--input ...] --output y.npy [--output ...] [--dump-dir D] "
    "[--backend auto|gpu|cpu] [--cache-dir C] [--repeat N] [--fail-allocations-over BYTES]";

int fail(const std::string& message) {
  std::fprintf(stderr, "mobilegen_run: %s\n", message.c_str());
  return 1;
}

struct Args {
  std::string blob, dump_dir, cache_dir;
  std::vector<std::string> inputs, outputs;
  Backend backend = Backend::Auto;
  int repeat = 1;
  long long fail_allocations_over = -1;  // -1: never
};

bool parse_args(int argc, char** argv, Args* a, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      *error = flag == "--help" ? kUsage : flag + " needs a value; " + kUsage;
      return false;
    }
    const std::string value = argv[++i];
    if (flag == "--blob") a->blob = value;
    else if (flag == "--input") a->inputs.push_back(value);
    else if (flag == "--output") a->outputs.push_back(value);
    else if (flag == "--dump-dir") a->dump_dir = value;
    else if (flag == "--cache-dir") a->cache_dir = value;
    else if (flag == "--backend") {
      if (value == "auto") a->backend = Backend::Auto;
      else if (value == "gpu") a->backend = Backend::Gpu;
      else if (value == "cpu") a->backend = Backend::Cpu;
      else {
        *error = "--backend " + value + ": expected auto, gpu or cpu";
        return false;
      }
    } else if (flag == "--repeat") {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || n < 1 || n > 100000) {
        *error = "--repeat " + value + ": expected a count from 1 to 100000";
        return false;
      }
      a->repeat = static_cast<int>(n);
    } else if (flag == "--fail-allocations-over") {
      char* end = nullptr;
      const long long n = std::strtoll(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || n < 0) {
        *error = "--fail-allocations-over " + value + ": expected a byte count";
        return false;
      }
      a->fail_allocations_over = n;
    } else {
      *error = "unknown option " + flag + "; " + kUsage;
      return false;
    }
  }
  if (a->blob.empty() || a->inputs.empty() || a->outputs.empty()) {
    *error = std::string("--blob, --input and --output are required; ") + kUsage;
    return false;
  }
  return true;
}

bool read_file(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !f.bad();
}

mobilegen::npy::Type npy_type(DType d) {
  switch (d) {
    case DType::Int8: return mobilegen::npy::Type::Int8;
    case DType::UInt8: return mobilegen::npy::Type::UInt8;
    case DType::Float32: break;
  }
  return mobilegen::npy::Type::Float32;
}

size_t bytes_of(const TensorInfo& t) {
  return static_cast<size_t>(t.h) * t.w * t.c * mobilegen::npy::type_size(npy_type(t.dtype));
}

std::string shape_text(const int64_t* shape, size_t rank) {
  std::string s = "[";
  for (size_t i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string describe(const TensorInfo& t) {
  const int64_t shape[4] = {t.shape[0], t.shape[1], t.shape[2], t.shape[3]};
  return std::string(mobilegen::npy::type_name(npy_type(t.dtype))) + shape_text(shape, t.rank);
}

std::string json_string(const char* s) {
  std::string out = "\"";
  for (const unsigned char* p = reinterpret_cast<const unsigned char*>(s); *p; ++p) {
    switch (*p) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (*p < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", *p);
          out += buf;
        } else {
          out += static_cast<char>(*p);  // UTF-8 passes through unchanged
        }
    }
  }
  return out + "\"";
}

// One tensors.json record, fields as mobilegen/dump.py writes them.
std::string json_record(const TensorInfo& t) {
  std::string shape = "[";
  for (int i = 0; i < t.rank; ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
  shape += "]";
  std::string scale = "null", zero_point = "null";
  if (t.dtype != DType::Float32) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(t.scale));  // reads back as the same double
    scale = buf;
    zero_point = std::to_string(t.zero_point);
  }
  return std::string("{\"index\": ") + std::to_string(t.index) + ", \"name\": " + json_string(t.name) +
         ", \"shape\": " + shape + ", \"dtype\": \"" + mobilegen::npy::type_name(npy_type(t.dtype)) +
         "\", \"scale\": " + scale + ", \"zero_point\": " + zero_point + "}";
}

bool make_dir(const std::string& path, std::string* error) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        *error = partial + ": cannot create directory (" + std::strerror(errno) + ")";
        return false;
      }
    }
    if (i < path.size()) partial += path[i];
  }
  return true;
}

// Writes one run's tensors under `dir`.
bool write_dump(Engine& engine, const std::string& dir, const std::vector<mobilegen::InputBuffer>& inputs,
                const std::vector<mobilegen::OutputBuffer>& outputs, std::string* error) {
  if (!make_dir(dir, error)) return false;
  std::vector<std::string> records;
  bool ok = true;
  int seen = 0;
  const mobilegen::TensorDumpFn dump = [&](const TensorInfo& t, const void* data, size_t bytes) {
    if (!ok) return;
    const int64_t shape[4] = {t.shape[0], t.shape[1], t.shape[2], t.shape[3]};
    const std::string path = dir + "/" + std::to_string(t.index) + ".npy";
    ok = mobilegen::npy::write(path, npy_type(t.dtype), shape, t.rank, data, bytes, error);
    // The graph inputs (reported first) are written for convenience but, as in mobilegen's dumps,
    // not listed.
    if (seen++ >= engine.num_inputs()) records.push_back(json_record(t));
  };
  const Status st = engine.run(inputs.data(), static_cast<int>(inputs.size()), outputs.data(),
                               static_cast<int>(outputs.size()), error, dump);
  if (st != Status::Ok) {
    *error = std::string(mobilegen::status_name(st)) + ": " + *error;
    return false;
  }
  if (!ok) return false;
  std::string json = "{\"tensors\": [\n";
  for (size_t i = 0; i < records.size(); ++i) json += " " + records[i] + (i + 1 < records.size() ? ",\n" : "\n");
  json += "]}\n";
  const std::string path = dir + "/tensors.json";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    *error = path + ": cannot write";
    return false;
  }
  const bool written = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  if (std::fclose(f) != 0 || !written) {
    *error = path + ": write failed";
    return false;
  }
  return true;
}

// The target the runner (and the engine, built with the same flags) was compiled for.
#if defined(__aarch64__)
constexpr const char* kArch = "aarch64";
#elif defined(__arm__)
constexpr const char* kArch = "arm";
#elif defined(__x86_64__)
constexpr const char* kArch = "x86_64";
#else
constexpr const char* kArch = "other";
#endif
#if defined(__ARM_NEON)
constexpr bool kNeon = true;
#else
constexpr bool kNeon = false;
#endif

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Gpu: return "gpu";
    case Backend::Cpu: return "cpu";
    case Backend::Auto: break;
  }
  return "auto";
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parse_args(argc, argv, &args, &error)) return fail(error);

  std::vector<uint8_t> blob;
  if (!read_file(args.blob, &blob)) return fail(args.blob + ": cannot read");
  mobilegen::Options options;
  options.backend = args.backend;
  options.cache_dir = args.cache_dir;
  Status status = Status::Ok;
  if (args.fail_allocations_over >= 0) g_allocation_limit = static_cast<std::size_t>(args.fail_allocations_over);
  std::unique_ptr<Engine> engine = Engine::create(blob.data(), blob.size(), options, &status, &error);
  g_allocation_limit = ~std::size_t{0};
  if (!engine) return fail(args.blob + ": " + mobilegen::status_name(status) + ": " + error);
  const mobilegen::BackendInfo& info = engine->backend_info();
  if (info.fallback_status != Status::Ok) {
    std::fprintf(stderr, "mobilegen_run: warning: running on the CPU, the GPU backend failed: %s: %s (renderer: %s)\n",
                 mobilegen::status_name(info.fallback_status), info.fallback_reason.c_str(),
                 info.renderer.empty() ? "none" : info.renderer.c_str());
  }
  blob.clear();
  blob.shrink_to_fit();

  if (args.inputs.size() != static_cast<size_t>(engine->num_inputs()) ||
      args.outputs.size() != static_cast<size_t>(engine->num_outputs())) {
    return fail(std::to_string(args.inputs.size()) + " --input and " + std::to_string(args.outputs.size()) +
                " --output given; the model has " + std::to_string(engine->num_inputs()) + " inputs and " +
                std::to_string(engine->num_outputs()) + " outputs");
  }
  std::vector<mobilegen::npy::Array> xs(args.inputs.size());
  std::vector<mobilegen::InputBuffer> inputs;
  for (size_t i = 0; i < xs.size(); ++i) {
    mobilegen::npy::Array& x = xs[i];
    if (!mobilegen::npy::read(args.inputs[i], &x, &error)) return fail(error);
    const TensorInfo& in = engine->input(static_cast<int>(i));
    bool shape_ok = x.shape.size() == static_cast<size_t>(in.rank) && x.type == npy_type(in.dtype);
    for (int d = 0; shape_ok && d < in.rank; ++d) shape_ok = x.shape[d] == in.shape[d];
    if (!shape_ok) {
      return fail(args.inputs[i] + ": " + mobilegen::npy::type_name(x.type) +
                  shape_text(x.shape.data(), x.shape.size()) + ", expected " + describe(in) + " for input tensor " +
                  json_string(in.name));
    }
    inputs.push_back({x.data.data(), x.data.size()});
  }
  std::vector<std::vector<uint8_t>> ys(args.outputs.size());
  std::vector<mobilegen::OutputBuffer> outputs;
  for (size_t i = 0; i < ys.size(); ++i) {
    ys[i].resize(bytes_of(engine->output(static_cast<int>(i))));
    outputs.push_back({ys[i].data(), ys[i].size()});
  }

  double first_us = 0.0, best_us = 0.0, best_warm_us = -1.0;
  long allocations_before = 0;  // counted from the second run on
  for (int r = 0; r < args.repeat; ++r) {
    if (r == 1) allocations_before = g_allocations.load();
    status = engine->run(inputs.data(), static_cast<int>(inputs.size()), outputs.data(),
                         static_cast<int>(outputs.size()), &error);
    if (status != Status::Ok) return fail(std::string(mobilegen::status_name(status)) + ": " + error);
    const double us = engine->last_run_us();
    if (r == 0) first_us = best_us = us;
    else best_warm_us = best_warm_us < 0.0 ? us : std::min(best_warm_us, us);
    best_us = std::min(best_us, us);
  }
  const long allocations = args.repeat > 1 ? g_allocations.load() - allocations_before : -1;
  for (size_t i = 0; i < ys.size(); ++i) {
    const TensorInfo& out = engine->output(static_cast<int>(i));
    const int64_t out_shape[4] = {out.shape[0], out.shape[1], out.shape[2], out.shape[3]};
    if (!mobilegen::npy::write(args.outputs[i], npy_type(out.dtype), out_shape, out.rank, ys[i].data(), ys[i].size(),
                               &error)) {
      return fail(error);
    }
  }
  if (!args.dump_dir.empty() && !write_dump(*engine, args.dump_dir, inputs, outputs, &error)) {
    return fail(error);
  }
  // best_warm_run_ms and allocations_after_first_run: -1 when there was only one run.
  std::printf(
      "{\"backend\": \"%s\", \"arch\": \"%s\", \"neon\": %s, \"first_run_ms\": %.3f, \"best_run_ms\": %.3f, "
      "\"best_warm_run_ms\": %.3f, \"runs\": %d, \"allocations_after_first_run\": %ld}\n",
      backend_name(engine->backend()), kArch, kNeon ? "true" : "false", first_us / 1000.0, best_us / 1000.0,
      best_warm_us < 0.0 ? -1.0 : best_warm_us / 1000.0, args.repeat, allocations);
  return 0;
}
