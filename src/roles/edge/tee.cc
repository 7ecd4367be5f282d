#include "roles/edge/tee.h"

namespace millions::edge {
namespace {

class Tee : public http::BodyStream {
 public:
  Tee(std::shared_ptr<http::BodyStream> from, uint64_t length,
      std::function<void(std::string*)> done)
      : from_(std::move(from)), length_(length), done_(std::move(done)) {
    copy_.reserve(static_cast<size_t>(length));
  }
  ~Tee() override { End(false); }

  boost::asio::awaitable<Status> Read(std::string& piece) override {
    Status st = co_await from_->Read(piece);
    if (!st.ok()) {
      End(false);
      co_return st;
    }
    if (piece.empty()) {
      End(copy_.size() == length_);
      co_return st;
    }
    if (copy_.size() + piece.size() > length_) {
      End(false);  // more than it said: not stored; the server cuts the connection
    } else if (done_) {
      copy_.append(piece);
    }
    co_return st;
  }

 private:
  void End(bool whole) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(whole ? &copy_ : nullptr);
    std::string().swap(copy_);
  }

  std::shared_ptr<http::BodyStream> from_;
  uint64_t length_;
  std::function<void(std::string*)> done_;
  std::string copy_;
};

}  // namespace

std::shared_ptr<http::BodyStream> MakeTee(std::shared_ptr<http::BodyStream> from, uint64_t length,
                                          std::function<void(std::string* body)> done) {
  return std::make_shared<Tee>(std::move(from), length, std::move(done));
}

}  // namespace millions::edge
