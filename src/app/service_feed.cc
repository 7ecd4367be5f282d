// Feed fan-out (stage 9's NoSQL step, docs/queue.md): the home feed as timelines in a Redis
// store, written when a post is fanned out and read in one round trip, instead of a join over
// follows and photos on every feed read. The database stays the source of truth: a timeline that
// is missing or was never built is rebuilt from it, and when the store is down the feed is read
// from the database as before. Celebrities' posts (owners with more followers than a bound) are
// not fanned out; they are merged in at read time from the owner's (cached) page of photos.
#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <unordered_set>

#include "app/service.h"
#include "core/log.h"

namespace millions::app {

using data::Consistency;
using JobOutcome = Service::JobOutcome;

struct Service::FeedMetrics {
  explicit FeedMetrics(metrics::Registry& r)
      : hit(Read(r, "hit")),
        rebuilt(Read(r, "rebuilt")),
        deep(Read(r, "deep")),
        unavailable(Read(r, "unavailable")),
        writes(r.GetCounter("millions_fanout_writes_total",
                            "Timeline entries written by feed fan-out.", {})),
        celebrity(r.GetCounter("millions_fanout_celebrity_posts_total",
                               "Posts not fanned out (their owner has too many followers).", {})),
        inline_fanouts(r.GetCounter(
            "millions_fanout_inline_total",
            "Posts fanned out by the node that took them (the fan-out queue was unavailable).",
            {})),
        lag(r.GetGauge("millions_fanout_lag_seconds",
                       "From a post's commit to its last timeline write, for the latest post.",
                       {})) {}
  static metrics::Counter& Read(metrics::Registry& r, const char* result) {
    return r.GetCounter("millions_timeline_reads_total",
                        "Feed reads by how the timeline answered: hit, rebuilt (from the "
                        "database), deep (a page older than the timeline keeps), unavailable.",
                        {{"result", result}});
  }
  metrics::Counter &hit, &rebuilt, &deep, &unavailable, &writes, &celebrity, &inline_fanouts;
  metrics::Gauge& lag;
};

Service::~Service() = default;

void Service::AttachTimelines(cache::TimelineStore* timelines, queue::JobQueue* fanout,
                              FeedOptions o) {
  timelines_ = timelines;
  fanout_ = fanout;
  feed_ = o;
  feed_metrics_ = std::make_shared<FeedMetrics>(metrics_);
}

namespace {

// One photo of a page, as the page renders it.
struct Item {
  int64_t id;
  std::string json;
};

int64_t ParseId(const boost::json::value* v) {
  int64_t id = 0;
  if (v && v->is_string()) {
    auto s = v->as_string();
    std::from_chars(s.data(), s.data() + s.size(), id);
  }
  return id;
}

// The items of a rendered page of photos (RenderPhotoPage).
void AddPageItems(std::string_view page, std::vector<Item>* out) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(page, ec);
  if (ec || !v.is_object()) return;
  const auto* items = v.as_object().if_contains("items");
  if (!items || !items->is_array()) return;
  for (const auto& e : items->as_array())
    if (e.is_object())
      out->push_back({ParseId(e.as_object().if_contains("id")), boost::json::serialize(e)});
}

// The same bytes RenderPhotoPage makes from these photos: newest first, at most `limit`.
std::string RenderItems(std::vector<Item> items, int limit) {
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.id > b.id; });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const Item& a, const Item& b) { return a.id == b.id; }),
              items.end());
  if (static_cast<int>(items.size()) > limit) items.resize(static_cast<size_t>(limit));
  std::string out = "{\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i].json;
  }
  out += "],\"next\":";
  if (static_cast<int>(items.size()) == limit && !items.empty())
    out += "\"" + std::to_string(items.back().id) + "\"";
  else
    out += "null";
  return out + "}";
}

}  // namespace

Result<std::string> Service::TimelineFeed(int64_t user_id, int64_t before, int limit) {
  FeedMetrics& m = *feed_metrics_;
  auto page = timelines_->Read(user_id, before, limit);
  // A replica's page lacks the posts whose fan-out waits for the primary: the database has them.
  if (!page.ok() || page->from_replica) {
    m.unavailable.Inc();
    return DatabaseFeed(user_id, before, limit);
  }
  std::vector<cache::TimelineEntry> entries = std::move(page->entries);
  bool full = page->full;
  if (!page->built) {
    // Never built (a new reader, a follow since, a lost store): from the database, then kept.
    // What fan-out pushed meanwhile stays in the timeline, so nothing committed is missed.
    // From the primary: a replica may not show yet the follow that dropped the timeline, and a
    // timeline built without a followee's photos would keep missing them.
    auto rows = store_.Feed(user_id, 0, timelines_->cap(), Consistency::kPrimary);
    if (!rows.ok()) return rows.error();
    std::vector<cache::TimelineEntry> all;
    for (const auto& r : *rows) all.push_back({r.id, r.owner_id});
    if (Status st = timelines_->Build(user_id, all); !st.ok())
      log::Warn("could not build a timeline",
                {{"user_id", user_id}, {"error", st.error().message}});
    m.rebuilt.Inc();
    for (const auto& e : all)
      if (before == 0 || e.photo_id < before) entries.push_back(e);
    full = static_cast<int>(rows->size()) >= timelines_->cap();
  } else {
    m.hit.Inc();
  }
  auto following_list = FollowList(cache::Kind::kFollowing, user_id);
  if (!following_list.ok()) return following_list.error();
  std::vector<int64_t> following_ids = ParseIdList(*following_list);
  std::unordered_set<int64_t> following(following_ids.begin(), following_ids.end());
  // Entries of someone no longer followed (an unfollow whose rebuild could not be asked for).
  std::erase_if(entries,
                [&](const cache::TimelineEntry& e) { return !following.count(e.owner_id); });
  if (static_cast<int>(entries.size()) < limit && full) {
    m.deep.Inc();  // older than the timeline keeps
    return DatabaseFeed(user_id, before, limit);
  }
  std::vector<Item> items;
  for (const auto& e : entries) {
    auto p = Photo(e.photo_id);  // cached per photo
    if (p.ok()) items.push_back({e.photo_id, std::move(*p)});
  }
  if (auto celebs = timelines_->Celebrities(); celebs.ok()) {
    for (int64_t c : *celebs) {
      if (!following.count(c)) continue;
      auto photos = UserPhotos(c, before, limit);  // the first page is cached
      if (photos.ok()) AddPageItems(*photos, &items);
    }
  }
  return RenderItems(std::move(items), limit);
}

void Service::PublishPost(const data::PhotoRow& p) {
  if (!timelines_) return;
  if (fanout_) {
    Status st = fanout_->Enqueue(p.id);
    if (st.ok()) {
      metrics_
          .GetCounter("millions_jobs_published_total", "Jobs published to the queue.",
                      {{"kind", "fanout"}})
          .Inc();
      return;
    }
    log::Warn("could not publish a fan-out job; fanning out here",
              {{"photo_id", p.id}, {"error", st.error().message}});
  }
  feed_metrics_->inline_fanouts.Inc();
  if (Status st = FanOut(p); !st.ok())
    log::Error("a post was not fanned out: its followers' timelines miss it until rebuilt",
               {{"photo_id", p.id}, {"error", st.error().message}});
}

void Service::TimelineChanged(int64_t user_id, bool forget) {
  if (!timelines_) return;
  Status st = timelines_->Drop(user_id, forget);
  if (st.ok()) return;
  // The store is down: a fan-out job naming the user rebuilds the timeline when it is back.
  if (fanout_) st = fanout_->Enqueue(user_id);
  if (!st.ok())
    log::Error("a timeline was not rebuilt after a follow change",
               {{"user_id", user_id}, {"error", st.error().message}});
}

Status Service::FanOut(const data::PhotoRow& p) {
  FeedMetrics& m = *feed_metrics_;
  auto followers =
      store_.FollowerIds(p.owner_id, feed_.celebrity_followers + 1, Consistency::kPrimary);
  if (!followers.ok()) return followers.error();
  if (static_cast<int>(followers->size()) > feed_.celebrity_followers) {
    if (Status st = timelines_->AddCelebrity(p.owner_id); !st.ok()) return st;
    m.celebrity.Inc();
  } else {
    if (Status st = timelines_->Push(*followers, {p.id, p.owner_id}); !st.ok()) return st;
    m.writes.Inc(double(followers->size()));
  }
  m.lag.Set(double(env_.WallMillis() - p.created_ms) / 1000.0);
  return Ok();
}

JobOutcome Service::ProcessFanout(const queue::Delivery& d, std::string* error) {
  auto fail = [&](const Error& e) {
    if (!d.last) return JobOutcome::kRetry;  // the store or the database is down: later
    if (error) *error = e.message;
    return JobOutcome::kFailed;
  };
  if (!timelines_) return fail(MakeError(Errc::kUnavailable, "no_timelines", "no timeline store"));
  auto photo = store_.GetPhoto(d.job_id, Consistency::kPrimary);
  if (photo.ok()) {
    Status st = FanOut(*photo);
    return st.ok() ? JobOutcome::kDone : fail(st.error());
  }
  if (photo.error().status() != 404) return fail(photo.error());
  auto user = store_.GetUser(d.job_id, Consistency::kPrimary);
  if (user.ok()) {
    Status st = timelines_->Drop(d.job_id, true);
    return st.ok() ? JobOutcome::kDone : fail(st.error());
  }
  if (user.error().status() != 404) return fail(user.error());
  if (error) *error = "names no photo and no user";
  return JobOutcome::kFailed;
}

}  // namespace millions::app
