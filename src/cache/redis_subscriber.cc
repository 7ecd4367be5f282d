// RedisSubscriber on Boost.Asio: a connection in SUBSCRIBE mode that re-subscribes after every
// reconnect. The connection life cycle is Link's (redis_link.h).
#include "cache/redis_link.h"

namespace millions::cache {
namespace detail {
namespace {

// Pub/sub: SUBSCRIBE on every connection, pushes to on_message, PING as a liveness probe (a
// subscribed connection is otherwise silent, and a peer that vanished without a FIN would never
// be noticed). Everything but Subscribed() and Close() runs on the io thread.
class SubscriberCore final : public Link {
 public:
  SubscriberCore(asio::io_context& ioc, RedisOptions o, std::vector<std::string> channels,
                 RedisSubscriber::OnMessage on_message)
      : Link(ioc, std::move(o)),
        channels_(std::move(channels)),
        on_message_(std::move(on_message)) {}

  bool Subscribed() const { return subscribed_.load(std::memory_order_relaxed); }

 private:
  void OnUp() override {
    if (channels_.empty()) {
      subscribed_ = true;
      return;
    }
    std::vector<std::string> cmd{"SUBSCRIBE"};
    cmd.insert(cmd.end(), channels_.begin(), channels_.end());
    Write(cmd);
  }

  void Write(const std::vector<std::string>& cmd) {
    std::lock_guard lock(mu_);
    EncodeCommand(cmd, &out_);
    WriteLocked();
  }

  void OnReplies(std::vector<RedisReply>& replies) override {
    for (auto& r : replies) {
      if (stopping_ || !conn_) return;  // on_message closed the subscriber
      if (r.is_error()) return Drop("redis refused SUBSCRIBE: " + r.str);
      if (r.type != RedisReply::Type::kArray || r.elements.empty()) continue;
      const std::string& kind = r.elements[0].str;
      if (kind == "message" && r.elements.size() == 3) {
        on_message_(r.elements[1].str, r.elements[2].str);
      } else if (kind == "subscribe") {
        if (++confirmed_ == channels_.size()) subscribed_ = true;
      } else if (kind == "pong") {
        awaiting_pong_ = false;
      }
    }
  }

  void OnTick() override {
    if (!conn_) return;
    if (awaiting_pong_) return Drop("no answer to PING");
    awaiting_pong_ = true;
    Write({"PING"});
  }

  milliseconds TickPeriod() const override {
    return std::max<milliseconds>(milliseconds(1000), 10 * opt_.command_timeout);
  }

  void OnDown(const std::string&) override {
    subscribed_ = false;
    confirmed_ = 0;
    awaiting_pong_ = false;
  }

  const std::vector<std::string> channels_;
  const RedisSubscriber::OnMessage on_message_;
  std::atomic<bool> subscribed_{false};
  size_t confirmed_ = 0;
  bool awaiting_pong_ = false;
};

class RedisSubscriberImpl final : public RedisSubscriber {
 public:
  explicit RedisSubscriberImpl(std::shared_ptr<SubscriberCore> core) : core_(std::move(core)) {}
  ~RedisSubscriberImpl() override { core_->Close(); }
  bool Subscribed() const override { return core_->Subscribed(); }
  void Close() override { core_->Close(); }

 private:
  std::shared_ptr<SubscriberCore> core_;
};

}  // namespace
}  // namespace detail

std::unique_ptr<RedisSubscriber> RedisSubscriber::Create(boost::asio::io_context& ioc,
                                                         RedisOptions options,
                                                         std::vector<std::string> channels,
                                                         OnMessage on_message) {
  auto core = std::make_shared<detail::SubscriberCore>(ioc, std::move(options), std::move(channels),
                                                       std::move(on_message));
  core->Start();
  return std::make_unique<detail::RedisSubscriberImpl>(std::move(core));
}

}  // namespace millions::cache
