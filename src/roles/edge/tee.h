// A response body passed on to the client as the origin sends it while a copy is kept: a large
// object streams to the first client during its fetch and is stored at its end (edge.cc).
// Thread-safety: one reader at a time, as any BodyStream. Ownership: owns the origin's stream
// and the copy; `done` runs once, with the whole body, or with nullptr when the body did not
// arrive whole (an error, a length that does not match, or the reader stopped early: the
// client went away).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/http.h"

namespace millions::edge {

std::shared_ptr<http::BodyStream> MakeTee(std::shared_ptr<http::BodyStream> from, uint64_t length,
                                          std::function<void(std::string* body)> done);

}  // namespace millions::edge
