// libFuzzer target: every JSON request body parser of the API.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "app/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)millions::app::ParseSignUp(body);
  (void)millions::app::ParseLogIn(body);
  (void)millions::app::ParseProfilePatch(body);
  std::string canonical;
  auto ops = millions::app::ParseEditOps(body, &canonical);
  if (ops.ok()) {
    // What we store must parse back to the same ops.
    auto again = millions::app::ParseStoredOps(canonical);
    if (!again.ok() || again->size() != ops->size()) __builtin_trap();
  }
  return 0;
}
