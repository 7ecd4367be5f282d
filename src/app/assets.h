// The browser UI's files, compiled into the binary (cmake/embed_assets.cmake writes
// assets_data.cc from web/). Thread-safety: immutable after static initialisation.
#pragma once

#include <string_view>

namespace millions::app {

struct EmbeddedFile {
  std::string_view name;          // "app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view bytes;
};

// Every file of web/, in name order.
extern const EmbeddedFile kEmbeddedFiles[];
extern const size_t kEmbeddedFileCount;

}  // namespace millions::app
