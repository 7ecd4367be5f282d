// RedisClient and RedisSubscriber against a real redis-server, started per suite on a free
// loopback port as a child process (the suite fails, not skips, when no server is installed: the
// project installs it). Covers replies of every kind, binary values, pipelining under 64
// threads, timeouts, a server killed and restarted on the same port (with the reconnect
// FLUSHALL), and pub/sub across a restart.
#include "cache/redis_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <thread>

#include "cache/l2.h"
#include "core/env.h"

extern char** environ;

namespace millions::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr const char* kServer = "/usr/bin/redis-server";

template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// One command on a fresh blocking connection: set-up and checks that must not depend on the
// client under test.
std::optional<RedisReply> Raw(int port, const std::vector<std::string>& argv) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::optional<RedisReply> out;
  std::string wire, in;
  EncodeCommand(argv, &wire);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      send(fd, wire.data(), wire.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(wire.size())) {
    RespParser parser;
    RedisReply r;
    size_t used = 0;
    char buf[4096];
    for (;;) {
      auto st = parser.Parse(in, &r, &used);
      if (st == RespParser::State::kReply) out = std::move(r);
      if (st != RespParser::State::kNeedMore) break;
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    std::abort();
  close(fd);
  return ntohs(a.sin_port);
}

// redis-server as a child process (it runs fine as root), in its own directory, restartable
// on the same port and directory, killed with SIGKILL.
class RedisServer {
 public:
  RedisServer() : port_(FreePort()) {
    char tmpl[] = "/tmp/redis-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~RedisServer() {
    Kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  // Returns an empty string once it answers PING, else what went wrong with its log.
  std::string Start() {
    std::string port = std::to_string(port_);
    std::vector<std::string> args = {
        kServer,        "--port", port,          "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no",     "--daemonize", "no",     "--dir",     dir_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log = dir_ + "/redis.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid_, kServer, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return "posix_spawn failed";
    auto end = Clock::now() + 5s;
    while (Clock::now() < end) {
      auto r = Raw(port_, {"PING"});
      if (r && r->str == "PONG") return "";
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    Kill();
    return "redis-server did not start; see " + log;
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  int port_;
  std::string dir_;
  pid_t pid_ = 0;
};

class RedisClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kServer, X_OK) == 0) server_ = new RedisServer;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    // The project installs redis-server (scripts/deps.sh): its absence is a broken machine, not a
    // reason to skip the only real-server tests of the lease scripts.
    ASSERT_NE(server_, nullptr) << kServer << " is not installed: apt-get install redis-server";
    if (!server_->running()) {
      ASSERT_EQ(server_->Start(), "");
    }
    auto r = Raw(server_->port(), {"FLUSHALL"});
    ASSERT_TRUE(r && r->str == "OK");
    io_ = std::thread([this] { ioc_.run(); });
    // The io thread's id, for checking where callbacks run.
    std::promise<std::thread::id> id;
    boost::asio::post(ioc_, [&] { id.set_value(std::this_thread::get_id()); });
    io_id_ = id.get_future().get();
  }

  void TearDown() override {
    work_.reset();
    ioc_.stop();
    if (io_.joinable()) io_.join();
  }

  RedisOptions Options() const {
    RedisOptions o;
    o.port = server_->port();
    o.command_timeout = 2s;  // generous: sanitizer builds on two cores
    o.backoff_min = 20ms;
    o.backoff_max = 300ms;
    return o;
  }

  std::unique_ptr<RedisClient> Connect(RedisOptions o) {
    auto c = RedisClient::Create(ioc_, std::move(o));
    EXPECT_TRUE(WaitFor([&] { return c->Connected(); }, 3s));
    return c;
  }

  static void ExpectUnavailable(const Result<RedisReply>& r) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status(), 503);
    EXPECT_EQ(r.error().code, "cache_unavailable");
  }

  static RedisServer* server_;
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      ioc_.get_executor()};
  std::thread io_;
  std::thread::id io_id_;
};
RedisServer* RedisClientTest::server_ = nullptr;

TEST_F(RedisClientTest, SetGetDelRoundTrip) {
  auto c = Connect(Options());
  auto r = c->Call({"SET", "k1", "v1"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->type, RedisReply::Type::kString);
  EXPECT_EQ(r->str, "OK");
  r = c->Call({"GET", "k1"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "v1");
  r = c->Call({"DEL", "k1"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, RedisReply::Type::kInteger);
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(c->Stats().connects, 1u);
}

TEST_F(RedisClientTest, NilAndErrorReplies) {
  auto c = Connect(Options());
  auto r = c->Call({"GET", "missing"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_nil());
  ASSERT_TRUE(c->Call({"SET", "s", "text"}).ok());
  r = c->Call({"INCR", "s"});
  ASSERT_TRUE(r.ok()) << "a Redis error reply is a successful Result";
  EXPECT_TRUE(r->is_error());
  EXPECT_EQ(r->str.rfind("ERR", 0), 0u) << r->str;
  r = c->Call({"NO_SUCH_COMMAND"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error());
  EXPECT_EQ(c->Call({}).error().status(), 400);  // would get no reply and shift every caller
  r = c->Call({"ECHO", "still in step"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "still in step");
}

TEST_F(RedisClientTest, BinaryValuesWithCrlfAndNul) {
  auto c = Connect(Options());
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  const std::string key("k\r\n\0key", 7);
  const std::string value = std::string("a\r\nb\0c\r\n", 8) + all;
  ASSERT_TRUE(c->Call({"SET", key, value}).ok());
  auto r = c->Call({"GET", key});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, value);
  // Bigger than the read buffer's first size: the reply arrives over several reads.
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  ASSERT_TRUE(c->Call({"SET", "big", big}).ok());
  r = c->Call({"GET", "big"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->str == big);
}

TEST_F(RedisClientTest, SixtyFourThreadsPipelinedAllCorrect) {
  auto o = Options();
  o.command_timeout = 10s;
  auto c = Connect(o);
  constexpr int kThreads = 64, kCalls = 2000;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "key:" + std::to_string(t);
      std::string last;
      for (int i = 0; i < kCalls; ++i) {
        std::string v = std::to_string(t) + ":" + std::to_string(i);
        Result<RedisReply> r = RedisReply{};
        std::string want;
        if (i % 3 == 0) {
          r = c->Call({"SET", key, v});
          want = "OK";
          last = v;
        } else if (i % 3 == 1) {
          r = c->Call({"GET", key});
          want = last;
        } else {
          r = c->Call({"ECHO", v});
          want = v;
        }
        if (!r.ok()) {
          ++failed;
        } else if (r->str != want) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  auto s = c->Stats();
  EXPECT_EQ(s.timeouts, 0u);
  EXPECT_EQ(s.disconnects, 0u);
}

TEST_F(RedisClientTest, CallManyRepliesInOrder) {
  auto c = Connect(Options());
  auto r = c->CallMany({{"DEL", "n"}, {"INCR", "n"}, {"INCR", "n"}, {"GET", "n"}, {"NOPE"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].integer, 0);
  EXPECT_EQ((*r)[1].integer, 1);
  EXPECT_EQ((*r)[2].integer, 2);
  EXPECT_EQ((*r)[3].str, "2");
  EXPECT_TRUE((*r)[4].is_error());
  auto one = c->CallMany({{"ECHO", "x"}});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].str, "x");
  auto none = c->CallMany({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(RedisClientTest, SendCallsBackOnceOnTheIoThread) {
  auto c = Connect(Options());
  std::promise<std::string> first, second;
  std::atomic<int> calls{0};
  c->Send({"ECHO", "one"}, [&](Result<RedisReply> r) {
    ++calls;
    EXPECT_EQ(std::this_thread::get_id(), io_id_);
    first.set_value(r.ok() ? r->str : r.error().message);
    // From a callback, on the io thread: Send is the way (Call would refuse).
    EXPECT_EQ(c->Call({"PING"}).error().code, "blocking_on_io_thread");
    c->Send({"ECHO", "two"}, [&](Result<RedisReply> r2) {
      ++calls;
      second.set_value(r2.ok() ? r2->str : r2.error().message);
    });
  });
  EXPECT_EQ(first.get_future().get(), "one");
  EXPECT_EQ(second.get_future().get(), "two");
  c->Send({"SET", "fire", "forget"}, nullptr);  // no callback at all is allowed
  EXPECT_EQ(c->Call({"GET", "fire"})->str, "forget");
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(RedisClientTest, UnreachableFailsAtOnce) {
  auto o = Options();
  o.port = FreePort();  // nothing listens there
  auto c = RedisClient::Create(ioc_, o);
  auto t0 = Clock::now();
  ExpectUnavailable(c->Call({"GET", "k"}));
  EXPECT_LT(Clock::now() - t0, 50ms);
  std::promise<int> status;
  c->Send({"GET", "k"}, [&](Result<RedisReply> r) {
    EXPECT_EQ(std::this_thread::get_id(), io_id_);
    status.set_value(r.ok() ? 200 : r.error().status());
  });
  EXPECT_EQ(status.get_future().get(), 503);
  EXPECT_FALSE(c->Connected());
  c->Close();
  c->Close();  // idempotent
}

TEST_F(RedisClientTest, TimeoutFailsTheCallAndKeepsRepliesInStep) {
  auto o = Options();
  o.command_timeout = 50ms;
  auto c = Connect(o);
  auto pause = Raw(server_->port(), {"CLIENT", "PAUSE", "300"});  // from another connection
  ASSERT_TRUE(pause && pause->str == "OK");
  auto paused_at = Clock::now();
  auto t0 = Clock::now();
  ExpectUnavailable(c->Call({"ECHO", "late"}));
  EXPECT_LT(Clock::now() - t0, 250ms);
  EXPECT_GE(c->Stats().timeouts, 1u);
  std::this_thread::sleep_until(paused_at + 350ms);
  // The late reply comes first and must go to its (failed) slot, not to this call.
  auto r = c->Call({"ECHO", "on time"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->str, "on time");
  EXPECT_EQ(c->Stats().disconnects, 0u);
}

TEST_F(RedisClientTest, StalledServerIsDroppedAndReconnected) {
  auto o = Options();
  o.command_timeout = 50ms;  // dead after max(1 s, 10 x 50 ms) = 1 s without the oldest reply
  auto c = Connect(o);
  ASSERT_TRUE(Raw(server_->port(), {"CLIENT", "PAUSE", "1400"}));
  ExpectUnavailable(c->Call({"ECHO", "stuck"}));
  EXPECT_TRUE(WaitFor([&] { return c->Stats().disconnects == 1; }, 2s));
  EXPECT_TRUE(WaitFor([&] { return c->Connected() && c->Call({"PING"}).ok(); }, 3s));
  EXPECT_EQ(c->Stats().connects, 2u);
}

TEST_F(RedisClientTest, MaxPendingRefusesAtOnce) {
  auto o = Options();
  o.max_pending = 2;
  auto c = Connect(o);
  ASSERT_TRUE(Raw(server_->port(), {"CLIENT", "PAUSE", "200"}));
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) c->Send({"PING"}, [&](Result<RedisReply> r) { done += r.ok(); });
  auto t0 = Clock::now();
  ExpectUnavailable(c->Call({"PING"}));
  EXPECT_LT(Clock::now() - t0, 100ms);
  EXPECT_TRUE(WaitFor([&] { return done == 2; }, 2s));
  EXPECT_TRUE(c->Call({"PING"}).ok());
}

TEST_F(RedisClientTest, CloseFailsPendingAndLaterCalls) {
  auto c = Connect(Options());
  ASSERT_TRUE(Raw(server_->port(), {"CLIENT", "PAUSE", "500"}));
  auto pending = std::async(std::launch::async, [&] { return c->Call({"ECHO", "x"}); });
  std::this_thread::sleep_for(50ms);
  auto t0 = Clock::now();
  c->Close();
  auto r = pending.get();
  EXPECT_LT(Clock::now() - t0, 200ms);
  ExpectUnavailable(r);
  ExpectUnavailable(c->Call({"PING"}));
  EXPECT_FALSE(c->Connected());
  c.reset();                           // the destructor after Close
  std::this_thread::sleep_for(500ms);  // let the pause end before the next test
}

TEST_F(RedisClientTest, KilledServerFailsFastThenReconnectsAndFlushes) {
  auto o = Options();
  o.command_timeout = 200ms;
  o.flush_on_reconnect = true;
  auto flushing = Connect(o);
  o.flush_on_reconnect = false;
  auto plain = Connect(o);
  // The restarted server loads this key from its dump: an entry that missed invalidations.
  ASSERT_TRUE(flushing->Call({"SET", "stale", "1"}).ok());
  ASSERT_EQ(Raw(server_->port(), {"SAVE"})->str, "OK");
  server_->Kill();
  EXPECT_TRUE(WaitFor([&] { return !flushing->Connected() && !plain->Connected(); }, 1s));
  for (int i = 0; i < 20; ++i) {
    auto t0 = Clock::now();
    ExpectUnavailable(flushing->Call({"GET", "stale"}));
    EXPECT_LT(Clock::now() - t0, 50ms);
  }
  ASSERT_EQ(server_->Start(), "");
  auto up = Clock::now();
  auto info = Raw(server_->port(), {"INFO", "persistence"});
  ASSERT_TRUE(info);
  EXPECT_NE(info->str.find("rdb_last_load_keys_loaded:1"), std::string::npos) << info->str;
  ASSERT_TRUE(WaitFor([&] { return flushing->Connected() && plain->Connected(); }, 3s));
  EXPECT_LT(Clock::now() - up, o.backoff_max + 500ms);
  auto r = flushing->Call({"GET", "stale"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->is_nil()) << "FLUSHALL did not run before callers were let in";
  auto s = flushing->Stats();
  EXPECT_EQ(s.connects, 2u);
  EXPECT_EQ(s.disconnects, 1u);
  EXPECT_EQ(s.flushes, 1u);
  EXPECT_EQ(plain->Stats().flushes, 0u);
  EXPECT_EQ(plain->Stats().connects, 2u);
  std::filesystem::remove(server_->dir() + "/dump.rdb");
}

TEST_F(RedisClientTest, SubscriberReceivesAndResubscribesAfterRestart) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> got;
  auto sub = RedisSubscriber::Create(ioc_, Options(), {"c1", "c2"},
                                     [&](const std::string& ch, const std::string& payload) {
                                       EXPECT_EQ(std::this_thread::get_id(), io_id_);
                                       std::lock_guard lock(mu);
                                       got.emplace_back(ch, payload);
                                       cv.notify_all();
                                     });
  auto wait_for = [&](size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 2s, [&] { return got.size() >= n; });
  };
  ASSERT_TRUE(WaitFor([&] { return sub->Subscribed(); }, 3s));
  auto pub = Connect(Options());
  EXPECT_EQ(pub->Call({"PUBLISH", "c1", "hello"})->integer, 1);
  EXPECT_EQ(pub->Call({"PUBLISH", "other", "nobody"})->integer, 0);
  EXPECT_EQ(pub->Call({"PUBLISH", "c2", std::string("b\r\n\0", 4)})->integer, 1);
  ASSERT_TRUE(wait_for(2));

  server_->Kill();
  EXPECT_TRUE(WaitFor([&] { return !sub->Subscribed(); }, 1s));
  ASSERT_EQ(server_->Start(), "");
  ASSERT_TRUE(WaitFor([&] { return sub->Subscribed() && pub->Connected(); }, 3s));
  EXPECT_EQ(pub->Call({"PUBLISH", "c1", "again"})->integer, 1);
  ASSERT_TRUE(wait_for(3));
  std::lock_guard lock(mu);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(std::string("c1"), std::string("hello")));
  EXPECT_EQ(got[1], std::make_pair(std::string("c2"), std::string("b\r\n\0", 4)));
  EXPECT_EQ(got[2], std::make_pair(std::string("c1"), std::string("again")));
}

// An ACL user: the client authenticates on every connection (a restart included) before any
// command; a wrong password never makes it Connected, and the subscriber authenticates too.
TEST_F(RedisClientTest, AuthenticatesAsItsAclUserOnEveryConnection) {
  auto setup = Raw(server_->port(), {"ACL", "SETUSER", "tester", "reset", "on", ">s3cret", "~*",
                                     "&*", "+@all", "-flushall"});
  ASSERT_TRUE(setup && setup->str == "OK");
  RedisOptions o = Options();
  o.user = "tester";
  o.password = "s3cret";
  auto c = Connect(o);
  EXPECT_EQ(c->Call({"SET", "k", "v"})->str, "OK");
  auto who = c->Call({"ACL", "WHOAMI"});
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->str, "tester");
  EXPECT_TRUE(c->Call({"FLUSHALL"})->is_error()) << "the user's own rules apply";

  server_->Kill();
  ASSERT_EQ(server_->Start(), "");  // the user is gone with the process: set it again
  setup = Raw(server_->port(), {"ACL", "SETUSER", "tester", "on", ">s3cret", "~*", "&*", "+@all"});
  ASSERT_TRUE(WaitFor([&] { return c->Connected(); }, 3s));
  EXPECT_EQ(c->Call({"ACL", "WHOAMI"})->str, "tester");

  std::atomic<bool> got{false};
  auto sub = RedisSubscriber::Create(ioc_, o, {"ch"},
                                     [&](const std::string&, const std::string&) { got = true; });
  ASSERT_TRUE(WaitFor([&] { return sub->Subscribed(); }, 3s));
  EXPECT_EQ(c->Call({"PUBLISH", "ch", "x"})->integer, 1);
  EXPECT_TRUE(WaitFor([&] { return got.load(); }, 2s));

  o.password = "wrong";
  auto bad = RedisClient::Create(ioc_, o);
  EXPECT_FALSE(WaitFor([&] { return bad->Connected(); }, 500ms));
  ExpectUnavailable(bad->Call({"PING"}));
  bad->Close();
  sub->Close();
  c->Close();
  Raw(server_->port(), {"ACL", "DELUSER", "tester"});
}

// RedisL2's lease protocol (l2.cc's scripts) on the real server.
class RedisL2Test : public RedisClientTest {
 protected:
  std::unique_ptr<L2> Open() {
    RedisL2Options o;
    o.nodes = {{"r1", "127.0.0.1", server_->port()}};
    o.timeout = 2s;
    auto l2 = OpenRedisL2(o, Env::Default());
    EXPECT_TRUE(WaitFor([&] { return l2->Stats()[0].up; }, 3s));
    return l2;
  }
};

TEST_F(RedisL2Test, MissLeasesOnceOthersWaitFillLands) {
  auto l2 = Open();
  auto a = l2->Get("k");
  ASSERT_EQ(a.kind, L2Lookup::Kind::kLease);
  EXPECT_FALSE(a.recent_write);
  EXPECT_EQ(l2->Get("k").kind, L2Lookup::Kind::kWait);  // the lease is held
  EXPECT_FALSE(l2->Fill("k", "not-the-token", "v0", 60s));
  EXPECT_TRUE(l2->Fill("k", a.token, "v1", 60s));
  auto hit = l2->Get("k");
  EXPECT_EQ(hit.kind, L2Lookup::Kind::kHit);
  EXPECT_EQ(hit.value, "v1");
}

TEST_F(RedisL2Test, DeleteRevokesTheLeaseAndMarksARecentWrite) {
  auto l2 = Open();
  auto a = l2->Get("k");
  ASSERT_EQ(a.kind, L2Lookup::Kind::kLease);
  l2->Delete({"k"});                                 // a write committed while `a` was loading
  EXPECT_FALSE(l2->Fill("k", a.token, "old", 60s));  // the older value stays out
  auto b = l2->Get("k");
  EXPECT_EQ(b.kind, L2Lookup::Kind::kLease);
  EXPECT_TRUE(b.recent_write);  // so b loads from the primary
  EXPECT_TRUE(l2->Fill("k", b.token, "new", 60s));
  EXPECT_EQ(l2->Get("k").value, "new");
}

TEST_F(RedisL2Test, EarlyRefreshLeaseOnlyForTheVersionSeen) {
  auto l2 = Open();
  auto a = l2->Get("k");
  ASSERT_TRUE(l2->Fill("k", a.token, "100:1:first", 60s));
  std::string t = l2->TryLease("k", "100:1:");
  ASSERT_FALSE(t.empty());
  EXPECT_TRUE(l2->TryLease("k", "100:1:").empty());  // held
  ASSERT_TRUE(l2->Fill("k", t, "200:1:second", 60s));
  // A reader that read "first" just before the refresh landed gets no lease: no second load.
  EXPECT_TRUE(l2->TryLease("k", "100:1:").empty());
  EXPECT_FALSE(l2->TryLease("k", "200:1:").empty());
}

TEST_F(RedisL2Test, ReleaseLetsTheNextReaderLoad) {
  auto l2 = Open();
  auto a = l2->Get("k");
  ASSERT_EQ(a.kind, L2Lookup::Kind::kLease);
  l2->Release("k", a.token);
  EXPECT_EQ(l2->Get("k").kind, L2Lookup::Kind::kLease);
}

TEST_F(RedisL2Test, BroadcastReachesSubscribers) {
  std::promise<std::vector<std::string>> got;
  std::atomic<bool> once{false};
  RedisL2Options o;
  o.nodes = {{"r1", "127.0.0.1", server_->port()}};
  o.on_invalidate = [&](const std::vector<std::string>& keys) {
    if (!once.exchange(true)) got.set_value(keys);
  };
  auto l2 = OpenRedisL2(o, Env::Default());
  ASSERT_TRUE(WaitFor([&] { return l2->Stats()[0].up; }, 3s));
  auto f = got.get_future();
  // The subscription may land a moment after the data connection: publish until heard.
  for (int i = 0; i < 100 && f.wait_for(20ms) != std::future_status::ready; ++i)
    l2->Publish({"u:1", "f:2"});
  ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(f.get(), (std::vector<std::string>{"u:1", "f:2"}));
}

}  // namespace
}  // namespace millions::cache
