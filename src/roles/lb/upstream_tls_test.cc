// [lb] upstream_tls in process: the balancer in front of fake web nodes that listen with TLS on
// port 0, with certificates made by the openssl command from a test CA. Requests proxy over
// TLS on one pooled connection (one handshake), bodies both ways whole and streamed; a backend
// whose certificate does not verify (another CA, another address, no TLS at all, no handshake
// ever) is refused, counted as a failed backend, and ejected like one whose connection is
// refused; the active checks go over TLS too.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/http_server.h"
#include "roles/lb/proxy_internal.h"

namespace millions::lb {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// The test CA, and leaf certificates: good (the CA's, IP 127.0.0.1), wrongname (the CA's, IP
// 127.0.0.2 only) and stranger (self-signed, IP 127.0.0.1).
std::string CertDir() {
  static const std::string dir = [] {
    std::string d =
        (fs::temp_directory_path() / ("lb-tls-test-" + std::to_string(getpid()))).string();
    fs::create_directories(d);
    auto sh = [&](const std::string& cmd) {
      std::string full = "cd '" + d + "' && " + cmd + " >/dev/null 2>&1";
      if (std::system(full.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    };
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    sh("openssl req -x509 " + ec + "-days 2 -subj /CN=testca -keyout ca.key -out ca.pem");
    for (auto [name, ip] : {std::pair{"good", "127.0.0.1"}, {"wrongname", "127.0.0.2"}}) {
      std::ofstream(d + "/" + name + ".ext") << "subjectAltName=IP:" << ip << "\n";
      sh("openssl req " + ec + "-subj /CN=" + name + " -keyout " + name + ".key -out " + name +
         ".csr");
      sh(std::string("openssl x509 -req -in ") + name + ".csr -CA ca.pem -CAkey ca.key " +
         "-CAcreateserial -days 2 -extfile " + name + ".ext -out " + name + ".pem");
    }
    sh("openssl req -x509 " + ec + "-days 2 -subj /CN=stranger -addext " +
       "subjectAltName=IP:127.0.0.1 -keyout stranger.key -out stranger.pem");
    return d;
  }();
  return dir;
}

// A client's body read as it arrives (the server's streamed body): `pieces` of 64 KiB.
class Pieces final : public http::BodyStream {
 public:
  explicit Pieces(int pieces) : left_(pieces) {}
  asio::awaitable<Status> Read(std::string& piece) override {
    piece.assign(left_-- > 0 ? 64 * 1024 : 0, 'p');
    co_return Ok();
  }

 private:
  int left_;
};

class UpstreamTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = CertDir();
    server_thread_ = std::thread([this] { server_ioc_.run(); });
  }
  void TearDown() override {
    work_.reset();
    server_ioc_.stop();
    server_thread_.join();
  }

  // A fake web node on a free port: TLS with `cert` (a name in CertDir), or plain when empty.
  // It answers with its name and whether the request came over TLS.
  std::string Backend(const std::string& name, const std::string& cert) {
    http::ServerOptions so;
    so.port = 0;
    so.role = "fake_" + name;
    if (!cert.empty()) {
      so.tls_cert_file = dir_ + "/" + cert + ".pem";
      so.tls_key_file = dir_ + "/" + cert + ".key";
    }
    auto s = std::make_unique<http::HttpServer>(
        server_ioc_, so,
        [name](http::Request& req) -> asio::awaitable<http::Response> {
          http::Response r;
          if (req.path == "/big") {
            r.body = std::string(300 * 1024, 'x');
          } else {
            r.body = name + (req.tls ? ":tls" : ":plain") + ":" + std::to_string(req.body.size());
          }
          co_return r;
        },
        &Registry());
    s->Start();
    std::string address = "127.0.0.1:" + std::to_string(s->port());
    servers_.push_back(std::move(s));
    return address;
  }

  LbConfig Config(std::vector<std::pair<std::string, std::string>> backends) {
    LbConfig cfg;
    cfg.settings.policy = "round_robin";
    cfg.settings.upstream_tls = true;
    cfg.settings.upstream_ca = dir_ + "/ca.pem";
    cfg.settings.consecutive_failures = 2;
    cfg.settings.base_ejection_ms = 60000;
    cfg.settings.rise = 1;
    cfg.settings.fall = 1;
    cfg.connect_timeout_ms = 300;
    for (auto& [name, address] : backends)
      cfg.backends.push_back({name, address, 1, std::make_shared<BackendStats>()});
    return cfg;
  }

  // One request through the balancer, run to its end on the client's io_context.
  http::Response Send(Proxy& proxy, const std::string& method, const std::string& path,
                      std::string body = "", std::shared_ptr<http::BodyStream> stream = nullptr) {
    http::Response out;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          http::Request req;
          req.method = method;
          req.target = req.path = path;
          req.headers.push_back({"Host", "test"});
          req.body = body;
          req.body_stream = stream;  // chunked to the backend: its length is not known
          req.remote_addr = "127.0.0.1";
          req.request_id = "req";
          http::Response r = co_await proxy.Handle(req);
          if (r.body_stream) {  // read a streamed answer whole
            std::string piece;
            do {
              Status st = co_await r.body_stream->Read(piece);
              EXPECT_TRUE(st.ok());
              r.body += piece;
            } while (!piece.empty());
          }
          out = std::move(r);
        },
        [this](std::exception_ptr e) {
          ioc_.stop();
          if (e) std::rethrow_exception(e);
        });
    ioc_.run();
    ioc_.restart();
    return out;
  }

  static bool Has(Proxy& proxy, const std::string& line) {
    std::string text = proxy.registry().Render();
    return text.find(line) != std::string::npos;
  }

  static metrics::Registry& Registry() {
    static auto* reg = new metrics::Registry;  // one per process: see upstream_test.cc
    return *reg;
  }

  std::string dir_;
  asio::io_context server_ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ =
      asio::make_work_guard(server_ioc_);
  std::thread server_thread_;
  std::vector<std::unique_ptr<http::HttpServer>> servers_;
  asio::io_context ioc_;  // the balancer's: the test thread runs it
};

TEST_F(UpstreamTls, RequestsGoOverTlsOnOnePooledConnection) {
  Proxy proxy(Config({{"good", Backend("good", "good")}}));
  ASSERT_NE(proxy.upstream_tls(), nullptr);
  SSL_CTX* ctx = proxy.upstream_tls()->native_handle();
  for (int i = 0; i < 20; ++i) {
    http::Response r = Send(proxy, "GET", "/x");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "good:tls:0");
  }
  // Keep-alive over TLS: one handshake for twenty requests.
  EXPECT_EQ(SSL_CTX_sess_connect_good(ctx), 1);
  // A body larger than a TLS record, and a response streamed back (over 256 KiB).
  http::Response post = Send(proxy, "POST", "/upload", std::string(100 * 1024, 'b'));
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(post.body, "good:tls:102400");
  // A streamed body of unknown length goes out chunked, a piece at a time.
  http::Response streamed = Send(proxy, "POST", "/upload", "", std::make_shared<Pieces>(5));
  EXPECT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.body, "good:tls:327680");
  http::Response big = Send(proxy, "GET", "/big");
  EXPECT_EQ(big.status, 200);
  EXPECT_EQ(big.body.size(), 300u * 1024);
  EXPECT_EQ(Send(proxy, "GET", "/x").body, "good:tls:0");
  EXPECT_EQ(SSL_CTX_sess_connect_good(ctx), 1);
  EXPECT_TRUE(Has(proxy, "millions_lb_requests_total{backend=\"good\",code=\"200\"} 24"));
  // The active check goes where requests go: over TLS, the certificate verified.
  proxy.CheckAll();
  EXPECT_TRUE(Has(proxy, "millions_lb_backend_up{backend=\"good\"} 1"));
}

TEST_F(UpstreamTls, ABackendWhoseCertificateDoesNotVerifyIsAFailedBackend) {
  // No TLS handshake ever: a listener whose connections the kernel accepts and nobody reads.
  asio::ip::tcp::acceptor silent(server_ioc_, {asio::ip::make_address("127.0.0.1"), 0});
  std::string silent_address = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"wrongname", Backend("wrongname", "wrongname")},  // the CA's, for another address
      {"stranger", Backend("stranger", "stranger")},     // the right address, another issuer
      {"plain", Backend("plain", "")},                   // its plain port: no TLS at all
      {"silent", silent_address},                        // never answers the handshake
  };
  for (const auto& [name, address] : bad) {
    Proxy proxy(Config({{name, address}}));
    auto t0 = std::chrono::steady_clock::now();
    http::Response r = Send(proxy, "GET", "/x");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, 503) << name << ": " << r.body;
    EXPECT_LT(seconds, 2.0) << name << ": the handshake is bounded by the connect timeout";
    EXPECT_TRUE(Has(proxy, "millions_lb_requests_total{backend=\"" + name + "\",code=\"error\"} 1"))
        << name;
    EXPECT_EQ(SSL_CTX_sess_connect_good(proxy.upstream_tls()->native_handle()), 0) << name;
    Send(proxy, "GET", "/x");  // the second failure in a row ejects it, as a refused connect
    EXPECT_TRUE(Has(proxy, "millions_lb_ejections_total{backend=\"" + name + "\"} 1")) << name;
    EXPECT_TRUE(Has(proxy, "millions_lb_backend_up{backend=\"" + name + "\"} 0")) << name;
  }
  // Beside a good node, every request is retried there and served; the bad one's checks fail.
  Proxy proxy(Config({{"wrongname", bad[0].second}, {"good", Backend("good", "good")}}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Send(proxy, "GET", "/x").body, "good:tls:0");
  EXPECT_TRUE(Has(proxy, "millions_lb_requests_total{backend=\"good\",code=\"200\"} 6"));
  EXPECT_TRUE(Has(proxy, "millions_lb_ejections_total{backend=\"wrongname\"} 1"));
  Proxy checked(Config({{"wrongname", bad[0].second}, {"good", Backend("good2", "good")}}));
  checked.CheckAll();  // fall = 1: one failed check takes it out
  EXPECT_TRUE(Has(checked, "millions_lb_backend_up{backend=\"wrongname\"} 0"));
  EXPECT_TRUE(Has(checked, "millions_lb_backend_up{backend=\"good\"} 1"));
}

}  // namespace
}  // namespace millions::lb
