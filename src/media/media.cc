// media.h without libvips: the checks that need no pixels (declared type, magic bytes, the
// header's size and orientation: sniff.h, the ops' arithmetic) run here, and the edits are handed
// to the libvips module, loaded with dlopen on first use (vips_api.h). Only processes that edit
// images ever map libvips: `single` and the workers load it at start (Init); a web node whose
// edits run on workers never does, uploads included.
// The module is found at $MILLIONS_MEDIA_MODULE, else beside the running binary
// (millions-media-vips.so, as the build and an install put it), else where this build made it.
#include "media/media.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/log.h"
#include "media/formats.h"
#include "media/sniff.h"
#include "media/vips_api.h"

#ifndef MILLIONS_MEDIA_MODULE_BUILD_PATH
#define MILLIONS_MEDIA_MODULE_BUILD_PATH ""
#endif

namespace millions::media {
namespace {

constexpr const char* kModuleName = "millions-media-vips.so";

struct Module {
  const internal::VipsApi* api = nullptr;
  std::string error;  // why there is no api
};

std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* env = getenv("MILLIONS_MEDIA_MODULE"); env && *env) return {env};
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0)
    out.push_back((std::filesystem::path(std::string(exe, static_cast<size_t>(n))).parent_path() /
                   kModuleName)
                      .string());
  if (*MILLIONS_MEDIA_MODULE_BUILD_PATH) out.push_back(MILLIONS_MEDIA_MODULE_BUILD_PATH);
  return out;
}

void VipsDebug(const char* message) { log::Debug("libvips", {{"vips_message", message}}); }

std::atomic<bool> loaded{false};

// Loads and starts the module once; every later call returns the same outcome.
const Module& Load() {
  static Module m;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string& path : Candidates()) {
      if (!std::filesystem::exists(path)) {
        tried += (tried.empty() ? "" : ", ") + path;
        continue;
      }
      // RTLD_LOCAL: libvips' symbols stay out of the global namespace. Never closed.
      void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char* why = dlerror();
        m.error = "cannot load " + path + ": " + (why ? why : "dlopen failed");
        return;
      }
      using Entry = const internal::VipsApi* (*)();
      auto entry = reinterpret_cast<Entry>(dlsym(h, "millions_media_vips_api"));
      const internal::VipsApi* api = entry ? entry() : nullptr;
      if (!api || api->abi != internal::kVipsAbi) {
        m.error = path + " is not this build's media module";
        return;
      }
      if (std::string why = api->start(&VipsDebug); !why.empty()) {
        m.error = why;
        return;
      }
      m.api = api;
      loaded = true;
      log::Info("libvips loaded", {{"module", path}});
      return;
    }
    m.error = std::string("no ") + kModuleName + " (looked at " + tried + ")";
  });
  return m;
}

Error Unavailable(const Module& m) {
  return MakeError(Errc::kInternal, "media_unavailable",
                   "image processing unavailable: " + m.error);
}

}  // namespace

void Init() {
  const Module& m = Load();
  if (!m.api) throw std::runtime_error(m.error);
}

bool Loaded() { return loaded.load(); }

Result<ImageInfo> Probe(std::string_view bytes, std::string_view declared_type,
                        const Limits& limits) {
  std::optional<Format> format = FormatOf(declared_type);
  if (!format) return Unsupported();
  if (!MagicMatches(bytes, *format))
    return BadImage("the bytes are not " + std::string(declared_type));
  return SniffProbe(bytes, declared_type, limits);  // the header alone: no libvips
}

Result<Encoded> ApplyOps(std::string_view bytes, const ImageInfo& info,
                         const std::vector<EditOp>& ops, const Limits& limits) {
  if (Status st = ValidateOps(info, ops, limits); !st.ok()) return st.error();
  std::optional<Format> format = FormatOf(info.content_type);
  if (!format) return Unsupported();
  if (!MagicMatches(bytes, *format)) return BadImage("the bytes are not " + info.content_type);
  const Module& m = Load();
  if (!m.api) return Unavailable(m);
  return m.api->apply(bytes, info, ops, limits);
}

}  // namespace millions::media
