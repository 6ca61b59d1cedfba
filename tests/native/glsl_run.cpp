// Runs GLSL ES 3.10 compute shaders over buffers on a headless EGL context (Mesa's surfaceless
// platform, llvmpipe here), for tests/test_native_numerics.py's checks of the shader library.
//
//   glsl_run SHADER IN OUT [SHADER IN OUT ...]
//
// Each SHADER is a complete compute shader source (the rendered library.glsl.j2, then a main)
// with local size 64 reading `binding = 0` (IN's bytes, a multiple of 16) and writing
// `binding = 1` (as many bytes, copied to OUT). Invocation i handles element i, with
//   i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u.
// Exit status 3: no EGL / OpenGL ES 3.1 compute here; 1: anything else (message on stderr).
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl31.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#ifndef EGL_PLATFORM_SURFACELESS_MESA
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD
#endif

namespace {

int unavailable(const char* what) {
  std::fprintf(stderr, "glsl_run: GpuUnavailable: %s\n", what);
  return 3;
}

int failed(const std::string& what) {
  std::fprintf(stderr, "glsl_run: %s\n", what.c_str());
  return 1;
}

bool read_file(const char* path, std::string* out) {
  FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  std::fclose(f);
  return true;
}

bool create_context() {
  auto get_platform_display =
      reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(eglGetProcAddress("eglGetPlatformDisplayEXT"));
  EGLDisplay display = EGL_NO_DISPLAY;
  if (get_platform_display != nullptr) {
    display = get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
  }
  EGLint major = 0, minor = 0;
  if (display == EGL_NO_DISPLAY || eglInitialize(display, &major, &minor) != EGL_TRUE) {
    display = eglGetDisplay(EGL_DEFAULT_DISPLAY);
    if (display == EGL_NO_DISPLAY || eglInitialize(display, &major, &minor) != EGL_TRUE) return false;
  }
  if (eglBindAPI(EGL_OPENGL_ES_API) != EGL_TRUE) return false;
  const EGLint config_attribs[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_ES3_BIT_KHR, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT,
                                   EGL_NONE};
  EGLConfig config = nullptr;
  EGLint count = 0;
  if (eglChooseConfig(display, config_attribs, &config, 1, &count) != EGL_TRUE || count < 1) return false;
  const EGLint context_attribs[] = {EGL_CONTEXT_MAJOR_VERSION_KHR, 3, EGL_CONTEXT_MINOR_VERSION_KHR, 1, EGL_NONE};
  EGLContext context = eglCreateContext(display, config, EGL_NO_CONTEXT, context_attribs);
  if (context == EGL_NO_CONTEXT) return false;
  EGLSurface surface = EGL_NO_SURFACE;
  const char* ext = eglQueryString(display, EGL_EXTENSIONS);
  if (ext == nullptr || std::strstr(ext, "EGL_KHR_surfaceless_context") == nullptr) {
    const EGLint pbuffer_attribs[] = {EGL_WIDTH, 1, EGL_HEIGHT, 1, EGL_NONE};
    surface = eglCreatePbufferSurface(display, config, pbuffer_attribs);
    if (surface == EGL_NO_SURFACE) return false;
  }
  if (eglMakeCurrent(display, surface, surface, context) != EGL_TRUE) return false;
  int gl_major = 0, gl_minor = 0;
  const char* version = reinterpret_cast<const char*>(glGetString(GL_VERSION));
  return version != nullptr && std::sscanf(version, "OpenGL ES %d.%d", &gl_major, &gl_minor) == 2 &&
         gl_major * 10 + gl_minor >= 31;
}

GLuint compile(const std::string& source, std::string* log) {
  GLuint shader = glCreateShader(GL_COMPUTE_SHADER);
  const char* text = source.c_str();
  glShaderSource(shader, 1, &text, nullptr);
  glCompileShader(shader);
  GLint ok = 0;
  glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    char buf[8192] = {0};
    glGetShaderInfoLog(shader, sizeof buf, nullptr, buf);
    *log = buf;
    glDeleteShader(shader);
    return 0;
  }
  GLuint program = glCreateProgram();
  glAttachShader(program, shader);
  glLinkProgram(program);
  glDeleteShader(shader);
  glGetProgramiv(program, GL_LINK_STATUS, &ok);
  if (!ok) {
    char buf[8192] = {0};
    glGetProgramInfoLog(program, sizeof buf, nullptr, buf);
    *log = buf;
    glDeleteProgram(program);
    return 0;
  }
  return program;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || (argc - 1) % 3 != 0) return failed("usage: glsl_run SHADER IN OUT [SHADER IN OUT ...]");
  if (!create_context()) return unavailable("no EGL display / OpenGL ES 3.1 context");
  for (int arg = 1; arg < argc; arg += 3) {
    std::string source, input, log;
    if (!read_file(argv[arg], &source)) return failed(std::string("cannot read ") + argv[arg]);
    if (!read_file(argv[arg + 1], &input) || input.empty() || input.size() % 16 != 0) {
      return failed(std::string("cannot read a non-empty multiple of 16 bytes from ") + argv[arg + 1]);
    }
    const GLuint program = compile(source, &log);
    if (program == 0) return failed(std::string(argv[arg]) + " does not compile: " + log);
    GLuint buffers[2];
    glGenBuffers(2, buffers);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, buffers[0]);
    glBufferData(GL_SHADER_STORAGE_BUFFER, static_cast<GLsizeiptr>(input.size()), input.data(), GL_STATIC_DRAW);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, buffers[1]);
    glBufferData(GL_SHADER_STORAGE_BUFFER, static_cast<GLsizeiptr>(input.size()), nullptr, GL_DYNAMIC_READ);
    glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 0, buffers[0]);
    glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 1, buffers[1]);
    glUseProgram(program);
    const size_t elements = input.size() / 16, groups = (elements + 63) / 64;
    const size_t gx = groups < 65535 ? groups : 65535, gy = (groups + gx - 1) / gx;
    glDispatchCompute(static_cast<GLuint>(gx), static_cast<GLuint>(gy), 1);
    glMemoryBarrier(GL_BUFFER_UPDATE_BARRIER_BIT);
    glBindBuffer(GL_SHADER_STORAGE_BUFFER, buffers[1]);
    const void* mapped =
        glMapBufferRange(GL_SHADER_STORAGE_BUFFER, 0, static_cast<GLsizeiptr>(input.size()), GL_MAP_READ_BIT);
    if (mapped == nullptr) return failed("glMapBufferRange failed");
    FILE* out = std::fopen(argv[arg + 2], "wb");
    const bool written = out != nullptr && std::fwrite(mapped, 1, input.size(), out) == input.size();
    glUnmapBuffer(GL_SHADER_STORAGE_BUFFER);
    if (out == nullptr || std::fclose(out) != 0 || !written) return failed(std::string("cannot write ") + argv[arg + 2]);
    if (glGetError() != GL_NO_ERROR) return failed(std::string("GL error running ") + argv[arg]);
    glDeleteBuffers(2, buffers);
    glDeleteProgram(program);
  }
  return 0;
}
