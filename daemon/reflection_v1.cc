#include "daemon/reflection_v1.h"

#include <algorithm>
#include <deque>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include "absl/strings/str_cat.h"

namespace qnet::daemon {
namespace {

namespace pb = google::protobuf;
namespace rv1 = grpc::reflection::v1;

void SetError(rv1::ServerReflectionResponse& response, grpc::StatusCode code, std::string message) {
  response.mutable_error_response()->set_error_code(static_cast<int32_t>(code));
  response.mutable_error_response()->set_error_message(std::move(message));
}

// The file first, then its imports (breadth first), skipping those already
// sent on this stream, as the protocol asks.
void AddFileWithImports(const pb::FileDescriptor* file, std::vector<std::string>& sent,
                        rv1::ServerReflectionResponse& response) {
  auto* files = response.mutable_file_descriptor_response();
  std::deque<const pb::FileDescriptor*> queue = {file};
  bool first = true;
  while (!queue.empty()) {
    const pb::FileDescriptor* f = queue.front();
    queue.pop_front();
    const bool already = std::find(sent.begin(), sent.end(), f->name()) != sent.end();
    // The file asked for is always sent; an import only once per stream.
    if (!already || first) {
      if (!already) sent.push_back(f->name());
      pb::FileDescriptorProto proto;
      f->CopyTo(&proto);
      files->add_file_descriptor_proto(proto.SerializeAsString());
      for (int i = 0; i < f->dependency_count(); ++i) queue.push_back(f->dependency(i));
    }
    first = false;
  }
}

}  // namespace

ServerReflectionV1::ServerReflectionV1(std::vector<std::string> services) : services_(std::move(services)) {}

rv1::ServerReflectionResponse ServerReflectionV1::Answer(const rv1::ServerReflectionRequest& request,
                                                        std::vector<std::string>& sent) const {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  rv1::ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  switch (request.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) response.mutable_list_services_response()->add_service()->set_name(name);
      break;
    case rv1::ServerReflectionRequest::kFileByFilename:
      if (const pb::FileDescriptor* file = pool->FindFileByName(request.file_by_filename())) {
        AddFileWithImports(file, sent, response);
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND, absl::StrCat("no file ", request.file_by_filename()));
      }
      break;
    case rv1::ServerReflectionRequest::kFileContainingSymbol:
      if (const pb::FileDescriptor* file = pool->FindFileContainingSymbol(request.file_containing_symbol())) {
        AddFileWithImports(file, sent, response);
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND, absl::StrCat("no symbol ", request.file_containing_symbol()));
      }
      break;
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const auto& asked = request.file_containing_extension();
      const pb::Descriptor* type = pool->FindMessageTypeByName(asked.containing_type());
      const pb::FieldDescriptor* extension =
          type == nullptr ? nullptr : pool->FindExtensionByNumber(type, asked.extension_number());
      if (extension != nullptr) {
        AddFileWithImports(extension->file(), sent, response);
      } else {
        SetError(response, grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no extension ", asked.extension_number(), " of ", asked.containing_type()));
      }
      break;
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(response, grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no message type ", request.all_extension_numbers_of_type()));
        break;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const pb::FieldDescriptor* e : extensions) numbers->add_extension_number(e->number());
      break;
    }
    case rv1::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      SetError(response, grpc::StatusCode::INVALID_ARGUMENT,
               "the request names none of file_by_filename, file_containing_symbol, file_containing_extension, "
               "all_extension_numbers_of_type, list_services");
      break;
  }
  return response;
}

grpc::Status ServerReflectionV1::ServerReflectionInfo(
    grpc::ServerContext* /*context*/,
    grpc::ServerReaderWriter<rv1::ServerReflectionResponse, rv1::ServerReflectionRequest>* stream) {
  std::vector<std::string> sent;
  rv1::ServerReflectionRequest request;
  while (stream->Read(&request)) {
    if (!stream->Write(Answer(request, sent))) break;
  }
  return grpc::Status::OK;
}

}  // namespace qnet::daemon
