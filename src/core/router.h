// Router: maps (method, path) to a handler through route templates such as "/api/users/{id}".
// The matched template, not the raw path, labels metrics, so labels stay bounded.
// Thread-safety: build it on one thread, then Match from any number of threads.
// Ownership: owns the handlers it is given.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/http.h"

namespace millions::http {

class Router {
 public:
  // `pattern` segments are literals or "{name}"; a trailing "{name...}" captures the rest.
  void Add(std::string method, std::string pattern, Handler handler);

  enum class Outcome { kMatched, kNotFound, kMethodNotAllowed };
  struct Match {
    Outcome outcome = Outcome::kNotFound;
    const Handler* handler = nullptr;
    std::string_view route;  // the template that matched
    std::vector<std::pair<std::string, std::string>> params;
  };
  Match Find(std::string_view method, std::string_view path) const;
  // The same, with the parameters of a matched route written into `params` (its storage
  // reused; cleared when nothing matched) instead of Match::params.
  Match Find(std::string_view method, std::string_view path,
             std::vector<std::pair<std::string, std::string>>* params) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace millions::http
