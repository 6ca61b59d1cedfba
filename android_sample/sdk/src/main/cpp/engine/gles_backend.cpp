// mobilegen engine: the GPU backend, GLES 3.1 compute shaders over EGL (no other API).
//
// init() creates its own EGL display and ES 3.1 context (Mesa's surfaceless platform when the
// driver offers it, else the default display with a 1x1 pbuffer, as on Android), compiles each
// program of the plan once (or loads it from the program-binary cache), uploads the weights once
// and allocates every tensor. run() only uploads the input, dispatches and reads back.
//
// Buffers, per kernel: storage buffer binding n is slot n of gpu_layout.h (the layout and the
// bindings the Metal backend shares).
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl31.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "gpu_layout.h"
#include "plan.h"

#ifndef EGL_PLATFORM_SURFACELESS_MESA
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD
#endif
#ifndef EGL_OPENGL_ES3_BIT_KHR
#define EGL_OPENGL_ES3_BIT_KHR 0x00000040
#endif
#ifndef EGL_CONTEXT_MAJOR_VERSION_KHR
#define EGL_CONTEXT_MAJOR_VERSION_KHR 0x3098
#endif
#ifndef EGL_CONTEXT_MINOR_VERSION_KHR
#define EGL_CONTEXT_MINOR_VERSION_KHR 0x30FB
#endif

namespace mobilegen {
namespace {

using gpu::fail;
using gpu::kBindings;

constexpr GLbitfield kReadBackBarrier =
    GL_SHADER_STORAGE_BARRIER_BIT | GL_BUFFER_UPDATE_BARRIER_BIT;

bool has_extension(const char* list, const char* name) {
  if (list == nullptr) return false;
  size_t n = std::strlen(name);
  for (const char* p = list; (p = std::strstr(p, name)) != nullptr; p += n) {
    bool starts = p == list || p[-1] == ' ';
    bool ends = p[n] == '\0' || p[n] == ' ';
    if (starts && ends) return true;
  }
  return false;
}

const char* gl_error_name(GLenum e) {
  switch (e) {
    case GL_INVALID_ENUM: return "GL_INVALID_ENUM";
    case GL_INVALID_VALUE: return "GL_INVALID_VALUE";
    case GL_INVALID_OPERATION: return "GL_INVALID_OPERATION";
    case GL_OUT_OF_MEMORY: return "GL_OUT_OF_MEMORY";
    case GL_INVALID_FRAMEBUFFER_OPERATION: return "GL_INVALID_FRAMEBUFFER_OPERATION";
    default: return "GL error";
  }
}

// Saves the calling thread's EGL state, makes ours current, restores theirs on destruction.
class CurrentContext {
 public:
  CurrentContext(EGLDisplay display, EGLSurface surface, EGLContext context)
      : prev_display_(eglGetCurrentDisplay()),
        prev_draw_(eglGetCurrentSurface(EGL_DRAW)),
        prev_read_(eglGetCurrentSurface(EGL_READ)),
        prev_context_(eglGetCurrentContext()),
        display_(display) {
    ok_ = eglMakeCurrent(display, surface, surface, context) == EGL_TRUE;
  }
  ~CurrentContext() {
    if (prev_context_ != EGL_NO_CONTEXT && prev_display_ != EGL_NO_DISPLAY) {
      eglMakeCurrent(prev_display_, prev_draw_, prev_read_, prev_context_);
    } else {
      // Release ours so that another thread may run this engine next.
      eglMakeCurrent(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    }
  }
  bool ok() const { return ok_; }

 private:
  EGLDisplay prev_display_;
  EGLSurface prev_draw_, prev_read_;
  EGLContext prev_context_;
  EGLDisplay display_;
  bool ok_ = false;
};

class GlesBackend final : public BackendImpl {
 public:
  ~GlesBackend() override { release(); }

  Status init(const ModelPlan& plan, const uint8_t* payload, size_t payload_size,
              const Options& options, std::string* error) override {
    plan_ = &plan;
    Status st = create_context(error);
    if (st != Status::Ok) return st;
    CurrentContext current(display_, surface_, context_);
    if (!current.ok()) return fail(Status::GpuUnavailable, "eglMakeCurrent failed", error);
    if ((st = check_limits(error)) != Status::Ok) return st;
    if ((st = build_programs(options.cache_dir, error)) != Status::Ok) return st;
    if ((st = allocate_tensors(error)) != Status::Ok) return st;
    if ((st = upload_constants(payload, payload_size, error)) != Status::Ok) return st;
    return check_gl("init", error);
  }

  Status run(const void* const* inputs, void* const* outputs, std::string* error,
             const TensorDumpFn& dump) override {
    if (context_ == EGL_NO_CONTEXT) return fail(Status::GpuError, "GPU backend not initialized", error);
    CurrentContext current(display_, surface_, context_);
    if (!current.ok()) return fail(Status::GpuError, "eglMakeCurrent failed in run()", error);
    const ModelPlan& plan = *plan_;

    // NHWC -> PHWC4 on the CPU (a float16 input rounded, TensorInfo::half), then one upload per input.
    for (int32_t i = 0; i < plan.num_inputs; ++i) {
      const TensorInfo& in = plan.tensors[plan.inputs[i]];
      gpu::pack(in, inputs[i], staging_.data());
      glBindBuffer(GL_SHADER_STORAGE_BUFFER, tensor_buffers_[plan.inputs[i]]);
      glBufferSubData(GL_SHADER_STORAGE_BUFFER, 0, static_cast<GLsizeiptr>(gpu_bytes(in)), staging_.data());
    }
    if (dump) {  // the inputs as the kernels see them
      for (int32_t i = 0; i < plan.num_inputs; ++i) {
        Status st = read_back(plan.inputs[i], dump_nhwc_.data(), error);
        if (st != Status::Ok) return st;
        dump(plan.tensors[plan.inputs[i]], dump_nhwc_.data(), tensor_bytes(plan.tensors[plan.inputs[i]]));
      }
    }

    for (int32_t i = 0; i < plan.num_kernels; ++i) {
      const Kernel& k = plan.kernels[i];
      if (k.gpu.shader >= 0) {
        glUseProgram(programs_[k.gpu.shader]);
        const GLuint* b = &bindings_[static_cast<size_t>(i) * kBindings];
        // Every slot, every dispatch: a slot this kernel does not use is unbound (0), so it never
        // keeps the previous kernel's buffer bound (4 cheap calls per kernel, no allocation).
        for (int j = 0; j < kBindings; ++j) glBindBufferBase(GL_SHADER_STORAGE_BUFFER, j, b[j]);
        if (dump) {  // debug path: what the driver reports bound is what this kernel expects
          for (int j = 0; j < kBindings; ++j) {
            GLint bound = -1;
            glGetIntegeri_v(GL_SHADER_STORAGE_BUFFER_BINDING, static_cast<GLuint>(j), &bound);
            if (bound != static_cast<GLint>(b[j])) {
              return fail(Status::GpuError, "kernel " + std::to_string(i) + ": storage buffer binding " +
                          std::to_string(j) + " holds buffer " + std::to_string(bound) + ", expected " +
                          std::to_string(b[j]), error);
            }
          }
        }
        glDispatchCompute(k.gpu.groups[0], k.gpu.groups[1], k.gpu.groups[2]);
        glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT);
      }
      if (dump) {
        const TensorInfo& t = plan.tensors[k.output];
        Status st = read_back(k.output, dump_nhwc_.data(), error);
        if (st != Status::Ok) return st;
        dump(t, dump_nhwc_.data(), tensor_bytes(t));
      }
    }
    for (int32_t i = 0; i < plan.num_outputs; ++i) {
      Status st = read_back(plan.outputs[i], outputs[i], error);
      if (st != Status::Ok) return st;
    }
    return check_gl("run", error);
  }

  Backend kind() const override { return Backend::Gpu; }
  std::string renderer() const override { return renderer_; }

 private:
  static Status check_gl(const char* where, std::string* error) {
    GLenum e = glGetError();
    if (e == GL_NO_ERROR) return Status::Ok;
    return fail(Status::GpuError, std::string(gl_error_name(e)) + " in " + where, error);
  }

  Status create_context(std::string* error) {
    const char* client_ext = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);  // null before EGL 1.5 ext
    auto get_platform_display = reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(
        eglGetProcAddress("eglGetPlatformDisplayEXT"));
    bool surfaceless_platform = get_platform_display != nullptr &&
                                has_extension(client_ext, "EGL_MESA_platform_surfaceless");
    if (surfaceless_platform) {
      display_ = get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
    }
    if (display_ == EGL_NO_DISPLAY) {
      surfaceless_platform = false;
      display_ = eglGetDisplay(EGL_DEFAULT_DISPLAY);
    }
    if (display_ == EGL_NO_DISPLAY) return fail(Status::GpuUnavailable, "no EGL display", error);
    EGLint major = 0, minor = 0;
    if (eglInitialize(display_, &major, &minor) != EGL_TRUE && surfaceless_platform) {
      display_ = eglGetDisplay(EGL_DEFAULT_DISPLAY);  // the surfaceless platform failed: try the default
      if (display_ != EGL_NO_DISPLAY && eglInitialize(display_, &major, &minor) != EGL_TRUE) {
        display_ = EGL_NO_DISPLAY;
      }
    } else if (major == 0) {
      display_ = EGL_NO_DISPLAY;
    }
    if (display_ == EGL_NO_DISPLAY) return fail(Status::GpuUnavailable, "eglInitialize failed", error);
    if (eglBindAPI(EGL_OPENGL_ES_API) != EGL_TRUE) {
      return fail(Status::GpuUnavailable, "EGL cannot bind the OpenGL ES API", error);
    }
    const EGLint config_attribs[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_ES3_BIT_KHR,
                                     EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_NONE};
    EGLConfig config = nullptr;
    EGLint count = 0;
    if (eglChooseConfig(display_, config_attribs, &config, 1, &count) != EGL_TRUE || count < 1) {
      return fail(Status::GpuUnavailable, "no EGL config for OpenGL ES 3", error);
    }
    const EGLint context_31[] = {EGL_CONTEXT_MAJOR_VERSION_KHR, 3, EGL_CONTEXT_MINOR_VERSION_KHR, 1,
                                 EGL_NONE};
    context_ = eglCreateContext(display_, config, EGL_NO_CONTEXT, context_31);
    if (context_ == EGL_NO_CONTEXT) {  // EGL without KHR_create_context: ask for "3", check below
      const EGLint context_3[] = {EGL_CONTEXT_CLIENT_VERSION, 3, EGL_NONE};
      context_ = eglCreateContext(display_, config, EGL_NO_CONTEXT, context_3);
    }
    if (context_ == EGL_NO_CONTEXT) {
      return fail(Status::GpuUnavailable, "cannot create an OpenGL ES 3.1 context", error);
    }
    const char* display_ext = eglQueryString(display_, EGL_EXTENSIONS);
    if (!has_extension(display_ext, "EGL_KHR_surfaceless_context")) {
      const EGLint pbuffer_attribs[] = {EGL_WIDTH, 1, EGL_HEIGHT, 1, EGL_NONE};
      surface_ = eglCreatePbufferSurface(display_, config, pbuffer_attribs);
      if (surface_ == EGL_NO_SURFACE) {
        return fail(Status::GpuUnavailable, "cannot create a 1x1 pbuffer surface", error);
      }
    }
    return Status::Ok;
  }

  Status check_limits(std::string* error) {
    const char* version = reinterpret_cast<const char*>(glGetString(GL_VERSION));
    const char* renderer = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
    renderer_ = renderer != nullptr ? renderer : "";
    int major = 0, minor = 0;
    if (version == nullptr || std::sscanf(version, "OpenGL ES %d.%d", &major, &minor) != 2 ||
        major * 10 + minor < 31) {
      return fail(Status::GpuUnavailable,
                  std::string("OpenGL ES 3.1 is required, the driver offers ") +
                      (version != nullptr ? version : "nothing"),
                  error);
    }
    driver_ = std::string(renderer != nullptr ? renderer : "") + " | " + version;
    GLint blocks = 0, invocations = 0, shared = 0, binary_formats = 0;
    glGetIntegerv(GL_MAX_COMPUTE_SHADER_STORAGE_BLOCKS, &blocks);
    glGetIntegerv(GL_MAX_COMPUTE_WORK_GROUP_INVOCATIONS, &invocations);
    glGetIntegerv(GL_MAX_COMPUTE_SHARED_MEMORY_SIZE, &shared);
    glGetIntegerv(GL_MAX_SHADER_STORAGE_BLOCK_SIZE, &max_block_size_);
    glGetIntegerv(GL_NUM_PROGRAM_BINARY_FORMATS, &binary_formats);
    binary_cache_ok_ = binary_formats > 0;
    if (glGetError() != GL_NO_ERROR || blocks < kBindings || invocations < 64 || shared < 1024) {
      return fail(Status::GpuUnavailable, "compute shaders unavailable on " + driver_, error);
    }
    return Status::Ok;
  }

  // -- programs -----------------------------------------------------------------------------------
  // A program's source is two strings: the plan's shader library, then the shader's own GLSL.
  size_t source_length(const ShaderSource& s) const {
    return std::strlen(plan_->shader_library) + std::strlen(s.source);
  }

  // The cache file of a program: keyed by the driver and both source strings.
  std::string cache_path(const std::string& dir, const ShaderSource& s) const {
    uint64_t h = gpu::fnv1a(s.source, gpu::fnv1a(plan_->shader_library, gpu::fnv1a(driver_)));
    char name[40];
    std::snprintf(name, sizeof name, "%016llx.glbin", static_cast<unsigned long long>(h));
    return dir + "/" + name;
  }

  GLuint load_cached(const std::string& path, const ShaderSource& s) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return 0;
    // Header: format, source length (a cheap guard against hash collisions), binary length.
    uint32_t header[3];
    std::vector<uint8_t> data;
    bool ok = std::fread(header, sizeof header, 1, f) == 1 && header[1] == source_length(s) &&
              header[2] > 0 && header[2] < (1u << 28);
    if (ok) {
      data.resize(header[2]);
      ok = std::fread(data.data(), 1, data.size(), f) == data.size();
    }
    std::fclose(f);
    if (!ok) return 0;
    GLuint program = glCreateProgram();
    glProgramBinary(program, header[0], data.data(), static_cast<GLsizei>(data.size()));
    GLint linked = GL_FALSE;
    glGetProgramiv(program, GL_LINK_STATUS, &linked);
    while (glGetError() != GL_NO_ERROR) {
    }
    if (linked != GL_TRUE) {  // a driver update or a foreign binary: compile instead
      glDeleteProgram(program);
      return 0;
    }
    return program;
  }

  // Best effort: the cache only speeds up the next start, so a binary the driver will not give or
  // a file that cannot be written (read-only or full storage) just leaves this program uncached.
  void store_cached(const std::string& path, GLuint program, const ShaderSource& s) {
    GLint length = 0;
    glGetProgramiv(program, GL_PROGRAM_BINARY_LENGTH, &length);
    if (length <= 0) return;  // the driver keeps no binary: nothing to cache
    std::vector<uint8_t> data(static_cast<size_t>(length));
    GLenum format = 0;
    GLsizei written = 0;
    glGetProgramBinary(program, length, &written, &format, data.data());
    if (glGetError() != GL_NO_ERROR || written <= 0) return;
    uint32_t header[3] = {format, static_cast<uint32_t>(source_length(s)), static_cast<uint32_t>(written)};
    std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    bool ok = f != nullptr && std::fwrite(header, sizeof header, 1, f) == 1 &&
              std::fwrite(data.data(), 1, static_cast<size_t>(written), f) ==
                  static_cast<size_t>(written);
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
  }

  Status compile(const ShaderSource& s, GLuint* out, std::string* error) {
    GLuint shader = glCreateShader(GL_COMPUTE_SHADER);
    const char* sources[2] = {plan_->shader_library, s.source};
    glShaderSource(shader, 2, sources, nullptr);
    glCompileShader(shader);
    GLint ok = GL_FALSE;
    glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
    if (ok != GL_TRUE) {
      char log[2048] = {0};
      glGetShaderInfoLog(shader, sizeof log, nullptr, log);
      glDeleteShader(shader);
      return fail(Status::GpuError, std::string("shader ") + s.name + " does not compile: " + log, error);
    }
    GLuint program = glCreateProgram();
    glAttachShader(program, shader);
    if (binary_cache_ok_) glProgramParameteri(program, GL_PROGRAM_BINARY_RETRIEVABLE_HINT, GL_TRUE);
    glLinkProgram(program);
    glDeleteShader(shader);  // flagged; freed with the program
    glGetProgramiv(program, GL_LINK_STATUS, &ok);
    if (ok != GL_TRUE) {
      char log[2048] = {0};
      glGetProgramInfoLog(program, sizeof log, nullptr, log);
      glDeleteProgram(program);
      return fail(Status::GpuError, std::string("shader ") + s.name + " does not link: " + log, error);
    }
    *out = program;
    return Status::Ok;
  }

  Status build_programs(const std::string& cache_dir, std::string* error) {
    const ModelPlan& plan = *plan_;
    bool use_cache = !cache_dir.empty() && binary_cache_ok_;
    programs_.assign(static_cast<size_t>(plan.num_shaders), 0);
    for (int32_t i = 0; i < plan.num_shaders; ++i) {
      const ShaderSource& s = plan.shaders[i];
      std::string path = use_cache ? cache_path(cache_dir, s) : std::string();
      GLuint program = use_cache ? load_cached(path, s) : 0;
      if (program != 0) {
        ++cache_hits_;
      } else {
        Status st = compile(s, &program, error);
        if (st != Status::Ok) return st;
        if (use_cache) store_cached(path, program, s);
      }
      programs_[i] = program;
    }
    return check_gl("program setup", error);
  }

  // -- buffers ------------------------------------------------------------------------------------
  size_t gpu_bytes(const TensorInfo& t) const { return gpu::phwc4_bytes(t); }

  GLuint new_buffer(size_t bytes, const void* data, GLenum usage, std::string* error) {
    if (bytes == 0) bytes = 16;  // empty regions still get a (dummy) buffer
    if (bytes > static_cast<size_t>(max_block_size_)) {
      fail(Status::GpuError, "a buffer of " + std::to_string(bytes) + " bytes exceeds GL_MAX_SHADER_STORAGE_BLOCK_SIZE", error);
      return 0;
    }
    GLuint b = 0;
    glGenBuffers(1, &b);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, b);
    glBufferData(GL_SHADER_STORAGE_BUFFER, static_cast<GLsizeiptr>(bytes), data, usage);
    buffers_.push_back(b);
    if (glGetError() != GL_NO_ERROR) {
      fail(Status::GpuError, "cannot allocate a buffer of " + std::to_string(bytes) + " bytes", error);
      return 0;
    }
    return b;
  }

  Status allocate_tensors(std::string* error) {
    const ModelPlan& plan = *plan_;
    std::vector<int32_t> owner;
    size_t staging = 0, nhwc = 0;
    Status st = gpu::plan_tensor_storage(plan, &owner, &staging, &nhwc, error);
    if (st != Status::Ok) return st;
    tensor_buffers_.assign(static_cast<size_t>(plan.num_tensors), 0);
    for (int32_t id = 0; id < plan.num_tensors; ++id) {  // owners first: an alias follows its input
      if (owner[id] == id && (tensor_buffers_[id] = new_buffer(gpu_bytes(plan.tensors[id]), nullptr, GL_DYNAMIC_COPY, error)) == 0) {
        return Status::GpuError;
      }
    }
    for (int32_t id = 0; id < plan.num_tensors; ++id) {
      if (owner[id] >= 0) tensor_buffers_[id] = tensor_buffers_[owner[id]];
    }
    staging_.assign(staging, 0);
    dump_nhwc_.assign(nhwc, 0);
    return Status::Ok;
  }

  Status upload_constants(const uint8_t* payload, size_t payload_size, std::string* error) {
    const ModelPlan& plan = *plan_;
    bindings_.assign(static_cast<size_t>(plan.num_kernels) * kBindings, 0);
    std::vector<uint8_t> channel, weights;
    for (int32_t i = 0; i < plan.num_kernels; ++i) {
      const Kernel& k = plan.kernels[i];
      GLuint* b = &bindings_[static_cast<size_t>(i) * kBindings];
      if (k.gpu.shader < 0) continue;
      b[0] = tensor_buffers_[k.output];
      if (k.inputs[0] >= 0) b[1] = tensor_buffers_[k.inputs[0]];
      if (k.inputs[1] >= 0) b[2] = tensor_buffers_[k.inputs[1]];
      Status st = gpu::kernel_constants(plan, i, payload, payload_size, &channel, &weights, error);
      if (st != Status::Ok) return st;
      if (!weights.empty() && (b[3] = new_buffer(weights.size(), weights.data(), GL_STATIC_DRAW, error)) == 0) {
        return Status::GpuError;
      }
      if (!channel.empty() && (b[2] = new_buffer(channel.size(), channel.data(), GL_STATIC_DRAW, error)) == 0) {
        return Status::GpuError;
      }
    }
    return Status::Ok;
  }

  Status read_back(int32_t id, void* nhwc, std::string* error) {
    const TensorInfo& t = plan_->tensors[id];
    glMemoryBarrier(kReadBackBarrier);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, tensor_buffers_[id]);
    GLsizeiptr bytes = static_cast<GLsizeiptr>(gpu_bytes(t));
    const void* mapped = glMapBufferRange(GL_SHADER_STORAGE_BUFFER, 0, bytes, GL_MAP_READ_BIT);
    if (mapped == nullptr) {
      return fail(Status::GpuError, std::string("cannot map tensor ") + t.name + " for reading", error);
    }
    gpu::unpack(t, static_cast<const uint8_t*>(mapped), nhwc);
    glUnmapBuffer(GL_SHADER_STORAGE_BUFFER);
    return Status::Ok;
  }

  void release() {
    if (display_ == EGL_NO_DISPLAY) return;
    if (context_ != EGL_NO_CONTEXT) {
      {
        CurrentContext current(display_, surface_, context_);
        if (current.ok()) {
          for (GLuint p : programs_) {
            if (p != 0) glDeleteProgram(p);
          }
          if (!buffers_.empty()) glDeleteBuffers(static_cast<GLsizei>(buffers_.size()), buffers_.data());
        }
      }
      eglDestroyContext(display_, context_);
      context_ = EGL_NO_CONTEXT;
    }
    if (surface_ != EGL_NO_SURFACE) {
      eglDestroySurface(display_, surface_);
      surface_ = EGL_NO_SURFACE;
    }
    // No eglTerminate: EGL displays are per process, other engines may share this one.
    display_ = EGL_NO_DISPLAY;
  }

  const ModelPlan* plan_ = nullptr;
  EGLDisplay display_ = EGL_NO_DISPLAY;
  EGLSurface surface_ = EGL_NO_SURFACE;
  EGLContext context_ = EGL_NO_CONTEXT;
  std::string driver_;  // GL_RENDERER | GL_VERSION: part of the program-cache key
  std::string renderer_;  // GL_RENDERER (Engine::backend_info)
  GLint max_block_size_ = 0;
  bool binary_cache_ok_ = false;
  int cache_hits_ = 0;
  std::vector<GLuint> programs_;        // per shader
  std::vector<GLuint> buffers_;         // every buffer we own
  std::vector<GLuint> tensor_buffers_;  // per tensor id (aliases share)
  std::vector<GLuint> bindings_;        // per kernel, kBindings buffers (0: unbound)
  std::vector<uint8_t> staging_;        // PHWC4 input packing
  std::vector<uint8_t> dump_nhwc_;      // NHWC unpacking for dumps
};

}  // namespace

std::unique_ptr<BackendImpl> make_gles_backend() { return std::unique_ptr<BackendImpl>(new GlesBackend()); }

}  // namespace mobilegen
