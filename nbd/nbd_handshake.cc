#include "nbd_handshake.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "nbd_protocol.h"

namespace pollux::nbd {
namespace {

void Append16(std::string& out, uint16_t v) {
  uint8_t b[2];
  Store16(b, v);
  out.append(reinterpret_cast<const char*>(b), sizeof(b));
}
void Append32(std::string& out, uint32_t v) {
  uint8_t b[4];
  Store32(b, v);
  out.append(reinterpret_cast<const char*>(b), sizeof(b));
}
void Append64(std::string& out, uint64_t v) {
  uint8_t b[8];
  Store64(b, v);
  out.append(reinterpret_cast<const char*>(b), sizeof(b));
}

// Reads the length-prefixed strings of an option's data, never past its end.
class OptionReader {
 public:
  OptionReader(const uint8_t* data, uint32_t length) : data_(data), left_(length) {}
  bool Read32(uint32_t& v) {
    if (left_ < 4) return false;
    v = Load32(data_);
    Skip(4);
    return true;
  }
  bool Read16(uint16_t& v) {
    if (left_ < 2) return false;
    v = Load16(data_);
    Skip(2);
    return true;
  }
  bool ReadString(uint32_t length, std::string_view& s) {
    if (length > left_) return false;
    s = std::string_view(reinterpret_cast<const char*>(data_), length);
    Skip(length);
    return true;
  }
  uint32_t left() const { return left_; }

 private:
  void Skip(uint32_t n) {
    data_ += n;
    left_ -= n;
  }
  const uint8_t* data_;
  uint32_t left_;
};

std::string OptionName(uint32_t option) {
  switch (option) {
    case kOptExportName:
      return "EXPORT_NAME";
    case kOptAbort:
      return "ABORT";
    case kOptList:
      return "LIST";
    case kOptStartTls:
      return "STARTTLS";
    case kOptInfo:
      return "INFO";
    case kOptGo:
      return "GO";
    case kOptStructuredReply:
      return "STRUCTURED_REPLY";
    case kOptListMetaContext:
      return "LIST_META_CONTEXT";
    case kOptSetMetaContext:
      return "SET_META_CONTEXT";
    default:
      return absl::StrFormat("option %u", option);
  }
}

}  // namespace

void AppendOptionReply(std::string& out, uint32_t option, uint32_t type, std::string_view payload) {
  Append64(out, kOptionReplyMagic);
  Append32(out, option);
  Append32(out, type);
  Append32(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
}

void Handshake::Start(std::string& out) {
  Append64(out, kNbdMagic);
  Append64(out, kIHaveOpt);
  Append16(out, kFlagFixedNewstyle | kFlagNoZeroes);
}

size_t Handshake::Consume(const uint8_t* data, size_t size, std::string& out) {
  size_t used = 0;
  while (state_ == State::kNegotiating) {
    const uint8_t* p = data + used;
    size_t left = size - used;
    if (!have_client_flags_) {
      if (left < 4) break;
      uint32_t flags = Load32(p);
      used += 4;
      if ((flags & kClientFlagFixedNewstyle) == 0) {
        // Without it the client cannot take option errors: the spec lets the server refuse.
        Close("the client does not speak the fixed newstyle handshake");
        break;
      }
      if ((flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) != 0) {
        Close(absl::StrFormat("unknown client flags 0x%x", flags));
        break;
      }
      no_zeroes_ = (flags & kClientFlagNoZeroes) != 0;
      have_client_flags_ = true;
      continue;
    }
    if (left < kOptionHeaderSize) break;
    if (Load64(p) != kIHaveOpt) {
      Close("an option without the IHAVEOPT magic");
      break;
    }
    uint32_t option = Load32(p + 8);
    uint32_t length = Load32(p + 12);
    if (length > kMaxOptionLength) {
      Close(absl::StrFormat("%s of %u bytes (at most %u)", OptionName(option), length,
                            kMaxOptionLength));
      break;
    }
    if (left < kOptionHeaderSize + length) break;
    used += kOptionHeaderSize + length;
    HandleOption(option, p + kOptionHeaderSize, length, out);
  }
  return used;
}

void Handshake::HandleOption(uint32_t option, const uint8_t* data, uint32_t length,
                             std::string& out) {
  switch (option) {
    case kOptExportName:
      return HandleExportName(data, length, out);
    case kOptAbort:
      AppendOptionReply(out, option, kRepAck);
      return Close("the client aborted the handshake");
    case kOptList: {
      if (length != 0) {
        return AppendOptionReply(out, option, kRepErrInvalid, "LIST takes no data");
      }
      for (const std::string& name : exports_.Names()) {
        std::string payload;
        Append32(payload, static_cast<uint32_t>(name.size()));
        payload += name;
        AppendOptionReply(out, option, kRepServer, payload);
      }
      return AppendOptionReply(out, option, kRepAck);
    }
    case kOptStructuredReply:
      if (length != 0) {
        return AppendOptionReply(out, option, kRepErrInvalid, "STRUCTURED_REPLY takes no data");
      }
      structured_replies_ = true;
      return AppendOptionReply(out, option, kRepAck);
    case kOptInfo:
    case kOptGo:
      return HandleInfoOrGo(option, data, length, out);
    case kOptListMetaContext:
    case kOptSetMetaContext:
      return HandleMetaContext(option, data, length, out);
    case kOptStartTls:
      return AppendOptionReply(out, option, kRepErrUnsup, "this server does not do TLS");
    default:
      return AppendOptionReply(out, option, kRepErrUnsup,
                               absl::StrFormat("%s is not supported", OptionName(option)));
  }
}

void Handshake::HandleExportName(const uint8_t* data, uint32_t length, std::string& out) {
  std::string_view name(reinterpret_cast<const char*>(data), length);
  absl::StatusOr<ExportInfo> info = exports_.Find(name);
  // The old way has no error reply: the spec's answer to an unknown name is to hang up.
  if (!info.ok()) return Close(std::string(info.status().message()));
  if (absl::Status s = Choose(*info); !s.ok()) return Close(std::string(s.message()));
  Append64(out, info->size_bytes);
  Append16(out, TransmissionFlags(*info));
  if (!no_zeroes_) out.append(124, '\0');
}

void Handshake::HandleInfoOrGo(uint32_t option, const uint8_t* data, uint32_t length,
                               std::string& out) {
  OptionReader reader(data, length);
  uint32_t name_length = 0;
  std::string_view name;
  uint16_t count = 0;
  if (!reader.Read32(name_length) || !reader.ReadString(name_length, name) ||
      !reader.Read16(count) || reader.left() != uint32_t{count} * 2) {
    return AppendOptionReply(out, option, kRepErrInvalid,
                             absl::StrFormat("%s: malformed data", OptionName(option)));
  }
  bool want_name = false;
  bool want_description = false;
  for (uint16_t i = 0; i < count; ++i) {
    uint16_t type = 0;
    reader.Read16(type);
    want_name |= type == kInfoName;
    want_description |= type == kInfoDescription;
  }
  absl::StatusOr<ExportInfo> info = exports_.Find(name);
  if (!info.ok()) {
    return AppendOptionReply(out, option, kRepErrUnknown, std::string(info.status().message()));
  }
  std::string payload;
  Append16(payload, kInfoExport);
  Append64(payload, info->size_bytes);
  Append16(payload, TransmissionFlags(*info));
  AppendOptionReply(out, option, kRepInfo, payload);
  if (want_name) {
    payload.clear();
    Append16(payload, kInfoName);
    payload += info->name;
    AppendOptionReply(out, option, kRepInfo, payload);
  }
  if (want_description && !info->description.empty()) {
    payload.clear();
    Append16(payload, kInfoDescription);
    payload += info->description;
    AppendOptionReply(out, option, kRepInfo, payload);
  }
  // Always: requests must be multiples of the bdev's block size.
  payload.clear();
  Append16(payload, kInfoBlockSize);
  Append32(payload, info->block_size);
  Append32(payload, std::max<uint32_t>(info->block_size, 4096));
  Append32(payload, info->max_payload);
  AppendOptionReply(out, option, kRepInfo, payload);
  if (option == kOptInfo) return AppendOptionReply(out, option, kRepAck);
  // A refused GO leaves the client free to try another export.
  if (absl::Status s = Choose(*info); !s.ok()) {
    return AppendOptionReply(out, option, kRepErrUnknown, std::string(s.message()));
  }
  AppendOptionReply(out, option, kRepAck);
}

void Handshake::HandleMetaContext(uint32_t option, const uint8_t* data, uint32_t length,
                                  std::string& out) {
  const bool set = option == kOptSetMetaContext;
  if (set && !structured_replies_) {
    return AppendOptionReply(out, option, kRepErrInvalid,
                             "SET_META_CONTEXT needs structured replies first");
  }
  OptionReader reader(data, length);
  uint32_t name_length = 0;
  std::string_view name;
  uint32_t queries = 0;
  if (!reader.Read32(name_length) || !reader.ReadString(name_length, name) ||
      !reader.Read32(queries)) {
    return AppendOptionReply(out, option, kRepErrInvalid,
                             absl::StrFormat("%s: malformed data", OptionName(option)));
  }
  std::vector<std::string_view> asked;
  for (uint32_t i = 0; i < queries; ++i) {
    uint32_t query_length = 0;
    std::string_view query;
    if (!reader.Read32(query_length) || query_length > kMaxStringSize ||
        !reader.ReadString(query_length, query)) {
      return AppendOptionReply(out, option, kRepErrInvalid,
                               absl::StrFormat("%s: malformed query", OptionName(option)));
    }
    asked.push_back(query);
  }
  if (reader.left() != 0) {
    return AppendOptionReply(out, option, kRepErrInvalid,
                             absl::StrFormat("%s: trailing data", OptionName(option)));
  }
  if (absl::StatusOr<ExportInfo> info = exports_.Find(name); !info.ok()) {
    return AppendOptionReply(out, option, kRepErrUnknown, std::string(info.status().message()));
  }
  // LIST with no query lists everything; "base:" asks for the whole namespace.
  bool match = !set && asked.empty();
  for (std::string_view query : asked) {
    match |= query == kBaseAllocation || (!set && query == "base:");
  }
  if (set) base_allocation_ = match;
  if (match) {
    std::string payload;
    Append32(payload, kBaseAllocationContextId);
    payload += kBaseAllocation;
    AppendOptionReply(out, option, kRepMetaContext, payload);
  }
  AppendOptionReply(out, option, kRepAck);
}

absl::Status Handshake::Choose(const ExportInfo& info) {
  if (absl::Status s = exports_.Open(info); !s.ok()) return s;
  chosen_ = info;
  state_ = State::kTransmission;
  return absl::OkStatus();
}

uint16_t Handshake::TransmissionFlags(const ExportInfo& info) const {
  // FLUSH and FUA always (the bdev layer makes FLUSH free on a device without a write cache);
  // a flush covers every connection's completed writes, so many connections may be used.
  uint16_t flags =
      kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendWriteZeroes | kFlagCanMultiConn;
  if (info.readonly) flags |= kFlagReadOnly;
  if (info.can_trim) flags |= kFlagSendTrim;
  if (structured_replies_) flags |= kFlagSendDf;
  return flags;
}

void Handshake::Close(std::string reason) {
  state_ = State::kClosed;
  close_reason_ = std::move(reason);
}

}  // namespace pollux::nbd
