// Private to core: turns a parsed Beast request into our Request, checking what Beast does not
// (header count, target form, path encoding), and fills request id and trace id.
// Thread-safety: pure functions. Ownership: takes the Beast message by value.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>

#include "core/http.h"
#include "core/http_limits.h"
#include "core/result.h"

namespace millions::http {

Result<Request> ConvertRequest(boost::beast::http::request<boost::beast::http::string_body>&& msg,
                               const Limits& limits);
std::string NewRequestId();

}  // namespace millions::http
