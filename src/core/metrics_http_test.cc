#include "core/metrics_http.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace millions::metrics {
namespace {

TEST(HttpRequestMetrics, CountsByRouteMethodAndCodeIntoTheRegistrysSeries) {
  Registry r;
  HttpRequestMetrics m(r, "web");
  m.Record("/api/users/{id}", "GET", 200, 0.003);
  m.Record("/api/users/{id}", "GET", 200, 0.003);
  m.Record("/api/users/{id}", "GET", 404, 0.001);
  m.Record("/api/users/{id}", "BREW", 200, 0.001);
  m.Record("/api/photos", "POST", 201, 0.02);
  auto count = [&](const char* route, const char* method, const char* code) {
    return r
        .GetCounter("millions_http_requests_total", "HTTP requests answered.",
                    {{"role", "web"}, {"route", route}, {"method", method}, {"code", code}})
        .value();
  };
  EXPECT_EQ(count("/api/users/{id}", "GET", "200"), 2);
  EXPECT_EQ(count("/api/users/{id}", "GET", "404"), 1);
  EXPECT_EQ(count("/api/users/{id}", "other", "200"), 1);
  EXPECT_EQ(count("/api/photos", "POST", "201"), 1);
  EXPECT_EQ(count("/api/photos", "GET", "201"), 0);
  std::string text = r.Render();
  EXPECT_NE(text.find("millions_http_request_duration_seconds_count{role=\"web\",route=\"/api/"
                      "users/{id}\"} 4\n"),
            std::string::npos)
      << text;
}

// Past the slots a route keeps per method, codes still count (through the registry).
TEST(HttpRequestMetrics, ManyCodesOnOneRouteAllCount) {
  Registry r;
  HttpRequestMetrics m(r, "lb");
  for (int round = 0; round < 3; ++round)
    for (int code = 200; code < 230; ++code) m.Record("/a", "GET", code, 0.001);
  for (int code = 200; code < 230; ++code)
    EXPECT_EQ(
        r.GetCounter(
             "millions_http_requests_total", "HTTP requests answered.",
             {{"role", "lb"}, {"route", "/a"}, {"method", "GET"}, {"code", std::to_string(code)}})
            .value(),
        3)
        << code;
}

// Threads adding routes and codes at once lose no request (run under TSan in the tsan preset).
TEST(HttpRequestMetrics, ConcurrentFirstUseLosesNothing) {
  Registry r;
  HttpRequestMetrics m(r, "web");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i)
        m.Record("/r" + std::to_string(i % 20), i % 2 ? "GET" : "POST", 200 + i % 5, 0.001);
    });
  for (auto& t : threads) t.join();
  double total = 0;
  for (int i = 0; i < 20; ++i)
    for (const char* method : {"GET", "POST"})
      for (int code = 200; code < 205; ++code)
        total += r.GetCounter("millions_http_requests_total", "HTTP requests answered.",
                              {{"role", "web"},
                               {"route", "/r" + std::to_string(i)},
                               {"method", method},
                               {"code", std::to_string(code)}})
                     .value();
  EXPECT_EQ(total, 4 * 2000);
}

TEST(HttpRequestMetrics, MethodLabelsAreBounded) {
  EXPECT_EQ(HttpRequestMetrics::MethodLabel("GET"), "GET");
  EXPECT_EQ(HttpRequestMetrics::MethodLabel("OPTIONS"), "OPTIONS");
  EXPECT_EQ(HttpRequestMetrics::MethodLabel("get"), "other");
  EXPECT_EQ(HttpRequestMetrics::MethodLabel("PROPFIND"), "other");
}

}  // namespace
}  // namespace millions::metrics
