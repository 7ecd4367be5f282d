#include "media/media.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <vips/vips8>

namespace millions::media {
namespace {

std::string Encode(int w, int h, const char* suffix) {
  // A colour gradient: x in red, y in green.
  vips::VImage xyz = vips::VImage::xyz(w, h);
  vips::VImage img = xyz[0].bandjoin(xyz[1]).bandjoin(xyz[0] + xyz[1]).cast(VIPS_FORMAT_UCHAR);
  img = img.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
  void* buf = nullptr;
  size_t len = 0;
  img.write_to_buffer(suffix, &buf, &len);
  std::string out(static_cast<const char*>(buf), len);
  g_free(buf);
  return out;
}

// A PNG whose header claims side x side 1-bit pixels, all zero: a few KB that decode to a lot.
std::string Bomb(uint32_t side) {
  std::string raw;
  std::string row(1 + (side + 7) / 8, '\0');
  for (uint32_t y = 0; y < side; ++y) raw += row;
  uLongf n = compressBound(raw.size());
  std::string z(n, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
            raw.size(), 9);
  z.resize(n);
  auto chunk = [](const std::string& type, const std::string& data) {
    std::string c;
    uint32_t len = data.size();
    for (int s = 24; s >= 0; s -= 8) c += static_cast<char>((len >> s) & 255);
    std::string body = type + data;
    uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size());
    c += body;
    for (int s = 24; s >= 0; s -= 8) c += static_cast<char>((crc >> s) & 255);
    return c;
  };
  std::string ihdr;
  for (uint32_t v : {side, side})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>((v >> s) & 255);
  ihdr += std::string("\x01\x00\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) +
         chunk("IEND", "");
}

class MediaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Init(); }
  Limits limits_;
};

TEST_F(MediaTest, ProbeAcceptsEachFormat) {
  for (auto [suffix, type] : {std::pair{".jpg", "image/jpeg"}, std::pair{".png", "image/png"},
                              std::pair{".webp", "image/webp"}}) {
    auto info = Probe(Encode(64, 48, suffix), type, limits_);
    ASSERT_TRUE(info.ok()) << type << ": " << info.error().message;
    EXPECT_EQ(info->width, 64);
    EXPECT_EQ(info->height, 48);
    EXPECT_EQ(info->content_type, type);
  }
}

TEST_F(MediaTest, ProbeRejectsLiesAndJunk) {
  EXPECT_EQ(Probe("hello, I am text", "image/png", limits_).error().code, "bad_image");
  EXPECT_EQ(Probe(Encode(8, 8, ".png"), "image/jpeg", limits_).error().code, "bad_image");
  EXPECT_EQ(Probe("GIF89a....", "image/gif", limits_).error().status(), 415);
  std::string truncated = Encode(64, 48, ".png").substr(0, 20);
  EXPECT_EQ(Probe(truncated, "image/png", limits_).error().code, "bad_image");
}

TEST_F(MediaTest, DecompressionBombIsRefusedFromTheHeader) {
  std::string bomb = Bomb(20000);
  ASSERT_LT(bomb.size(), 200u * 1024);
  auto t0 = std::chrono::steady_clock::now();
  auto r = Probe(bomb, "image/png", limits_);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status(), 413);
  EXPECT_EQ(r.error().code, "image_too_large");
  EXPECT_LT(took, std::chrono::seconds(1));
}

TEST_F(MediaTest, OpsChangeDimensionsAsExpected) {
  std::string png = Encode(64, 48, ".png");
  ImageInfo info{64, 48, "image/png"};
  using K = EditOp::Kind;
  struct Case {
    std::vector<EditOp> ops;
    int w, h;
  } cases[] = {
      {{{K::kCrop, 10, 10, 20, 20}}, 20, 20},
      {{{.kind = K::kRotate, .degrees = 90}}, 48, 64},
      {{{.kind = K::kRotate, .degrees = 180}}, 64, 48},
      {{{.kind = K::kResize, .width = 32, .height = 24}}, 32, 24},
      {{{.kind = K::kResize, .width = 100, .height = 7}}, 100, 7},
      {{{.kind = K::kBlur, .sigma = 2}, {.kind = K::kSharpen, .sigma = 1}}, 64, 48},
  };
  for (const auto& c : cases) {
    auto out = ApplyOps(png, info, c.ops, limits_);
    ASSERT_TRUE(out.ok()) << out.error().message;
    auto probed = Probe(out->bytes, "image/png", limits_);
    ASSERT_TRUE(probed.ok());
    EXPECT_EQ(probed->width, c.w);
    EXPECT_EQ(probed->height, c.h);
    EXPECT_EQ(out->info.width, c.w);
  }
}

TEST_F(MediaTest, GrayscaleHasOneBandAndKeepsFormat) {
  for (auto [suffix, type] : {std::pair{".jpg", "image/jpeg"}, std::pair{".webp", "image/webp"},
                              std::pair{".png", "image/png"}}) {
    auto out = ApplyOps(Encode(40, 30, suffix), {40, 30, type},
                        {{.kind = EditOp::Kind::kGrayscale}}, limits_);
    ASSERT_TRUE(out.ok()) << type << ": " << out.error().message;
    auto probed = Probe(out->bytes, type, limits_);
    ASSERT_TRUE(probed.ok()) << type;
    vips::VImage img = vips::VImage::new_from_buffer(out->bytes.data(), out->bytes.size(), "");
    // WebP stores colour only: a grey image comes back as three equal bands.
    if (std::string_view(type) != "image/webp") EXPECT_EQ(img.bands(), 1) << type;
  }
}

TEST_F(MediaTest, ValidateOpsRejectsBadOps) {
  ImageInfo info{64, 48, "image/png"};
  using K = EditOp::Kind;
  std::vector<std::vector<EditOp>> bad = {
      {{K::kCrop, 60, 0, 10, 10}},
      {{.kind = K::kRotate, .degrees = 45}},
      {{.kind = K::kBlur, .sigma = 0}},
      {{.kind = K::kSharpen, .sigma = 50}},
      {{.kind = K::kResize, .width = 0, .height = 5}},
      // A crop that fits the original but not the image after the rotation before it.
      {{.kind = K::kRotate, .degrees = 90}, {K::kCrop, 0, 0, 64, 10}},
      std::vector<EditOp>(11, EditOp{.kind = K::kGrayscale}),
      {},
  };
  for (const auto& ops : bad) {
    Status st = ValidateOps(info, ops, limits_);
    ASSERT_FALSE(st.ok()) << ops.size();
    EXPECT_EQ(st.error().code, "bad_edit");
  }
}

TEST_F(MediaTest, CorruptDataFailsCleanly) {
  std::string png = Encode(64, 48, ".png");
  png.resize(png.size() / 2);  // header intact, pixels cut off
  auto out = ApplyOps(png, {64, 48, "image/png"}, {{.kind = EditOp::Kind::kGrayscale}}, limits_);
  EXPECT_FALSE(out.ok());
}

}  // namespace
}  // namespace millions::media
