#include "sl_err.h"

#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "sl_config.h"

/* libuv results are passed through as they are (sl_err.h). */
_Static_assert((int)SL_EOF == (int)UV_EOF, "SL_EOF must equal UV_EOF");

/* libcurl's CURLcode names and curl_easy_strerror() texts, indexed by
 * code (curl 7.88). Kept here rather than asking libcurl so that common/
 * does not link it (the agent never talks HTTP); a code past the table
 * still gets a name built from its number. */
static const struct {
  const char *name, *msg;
} curl_codes[] = {
  {"CURLE_OK", "No error"},
  {"CURLE_UNSUPPORTED_PROTOCOL", "Unsupported protocol"},
  {"CURLE_FAILED_INIT", "Failed initialization"},
  {"CURLE_URL_MALFORMAT", "URL using bad/illegal format or missing URL"},
  {"CURLE_NOT_BUILT_IN", "A requested feature, protocol or option was not found built-in in this libcurl due to a build-time decision."},
  {"CURLE_COULDNT_RESOLVE_PROXY", "Couldn't resolve proxy name"},
  {"CURLE_COULDNT_RESOLVE_HOST", "Couldn't resolve host name"},
  {"CURLE_COULDNT_CONNECT", "Couldn't connect to server"},
  {"CURLE_WEIRD_SERVER_REPLY", "Weird server reply"},
  {"CURLE_REMOTE_ACCESS_DENIED", "Access denied to remote resource"},
  {"CURLE_FTP_ACCEPT_FAILED", "FTP: The server failed to connect to data port"},
  {"CURLE_FTP_WEIRD_PASS_REPLY", "FTP: unknown PASS reply"},
  {"CURLE_FTP_ACCEPT_TIMEOUT", "FTP: Accepting server connect has timed out"},
  {"CURLE_FTP_WEIRD_PASV_REPLY", "FTP: unknown PASV reply"},
  {"CURLE_FTP_WEIRD_227_FORMAT", "FTP: unknown 227 response format"},
  {"CURLE_FTP_CANT_GET_HOST", "FTP: can't figure out the host in the PASV response"},
  {"CURLE_HTTP2", "Error in the HTTP2 framing layer"},
  {"CURLE_FTP_COULDNT_SET_TYPE", "FTP: couldn't set file type"},
  {"CURLE_PARTIAL_FILE", "Transferred a partial file"},
  {"CURLE_FTP_COULDNT_RETR_FILE", "FTP: couldn't retrieve (RETR failed) the specified file"},
  {"CURLE_OBSOLETE20", "Unknown error"},
  {"CURLE_QUOTE_ERROR", "Quote command returned error"},
  {"CURLE_HTTP_RETURNED_ERROR", "HTTP response code said error"},
  {"CURLE_WRITE_ERROR", "Failed writing received data to disk/application"},
  {"CURLE_OBSOLETE24", "Unknown error"},
  {"CURLE_UPLOAD_FAILED", "Upload failed (at start/before it took off)"},
  {"CURLE_READ_ERROR", "Failed to open/read local data from file/application"},
  {"CURLE_OUT_OF_MEMORY", "Out of memory"},
  {"CURLE_OPERATION_TIMEDOUT", "Timeout was reached"},
  {"CURLE_OBSOLETE29", "Unknown error"},
  {"CURLE_FTP_PORT_FAILED", "FTP: command PORT failed"},
  {"CURLE_FTP_COULDNT_USE_REST", "FTP: command REST failed"},
  {"CURLE_OBSOLETE32", "Unknown error"},
  {"CURLE_RANGE_ERROR", "Requested range was not delivered by the server"},
  {"CURLE_HTTP_POST_ERROR", "Internal problem setting up the POST"},
  {"CURLE_SSL_CONNECT_ERROR", "SSL connect error"},
  {"CURLE_BAD_DOWNLOAD_RESUME", "Couldn't resume download"},
  {"CURLE_FILE_COULDNT_READ_FILE", "Couldn't read a file:// file"},
  {"CURLE_LDAP_CANNOT_BIND", "LDAP: cannot bind"},
  {"CURLE_LDAP_SEARCH_FAILED", "LDAP: search failed"},
  {"CURLE_OBSOLETE40", "Unknown error"},
  {"CURLE_FUNCTION_NOT_FOUND", "A required function in the library was not found"},
  {"CURLE_ABORTED_BY_CALLBACK", "Operation was aborted by an application callback"},
  {"CURLE_BAD_FUNCTION_ARGUMENT", "A libcurl function was given a bad argument"},
  {"CURLE_OBSOLETE44", "Unknown error"},
  {"CURLE_INTERFACE_FAILED", "Failed binding local connection end"},
  {"CURLE_OBSOLETE46", "Unknown error"},
  {"CURLE_TOO_MANY_REDIRECTS", "Number of redirects hit maximum amount"},
  {"CURLE_UNKNOWN_OPTION", "An unknown option was passed in to libcurl"},
  {"CURLE_SETOPT_OPTION_SYNTAX", "Malformed option provided in a setopt"},
  {"CURLE_OBSOLETE50", "Unknown error"},
  {"CURLE_OBSOLETE51", "Unknown error"},
  {"CURLE_GOT_NOTHING", "Server returned nothing (no headers, no data)"},
  {"CURLE_SSL_ENGINE_NOTFOUND", "SSL crypto engine not found"},
  {"CURLE_SSL_ENGINE_SETFAILED", "Can not set SSL crypto engine as default"},
  {"CURLE_SEND_ERROR", "Failed sending data to the peer"},
  {"CURLE_RECV_ERROR", "Failure when receiving data from the peer"},
  {"CURLE_OBSOLETE57", "Unknown error"},
  {"CURLE_SSL_CERTPROBLEM", "Problem with the local SSL certificate"},
  {"CURLE_SSL_CIPHER", "Couldn't use specified SSL cipher"},
  {"CURLE_PEER_FAILED_VERIFICATION", "SSL peer certificate or SSH remote key was not OK"},
  {"CURLE_BAD_CONTENT_ENCODING", "Unrecognized or bad HTTP Content or Transfer-Encoding"},
  {"CURLE_OBSOLETE62", "Unknown error"},
  {"CURLE_FILESIZE_EXCEEDED", "Maximum file size exceeded"},
  {"CURLE_USE_SSL_FAILED", "Requested SSL level failed"},
  {"CURLE_SEND_FAIL_REWIND", "Send failed since rewinding of the data stream failed"},
  {"CURLE_SSL_ENGINE_INITFAILED", "Failed to initialise SSL crypto engine"},
  {"CURLE_LOGIN_DENIED", "Login denied"},
  {"CURLE_TFTP_NOTFOUND", "TFTP: File Not Found"},
  {"CURLE_TFTP_PERM", "TFTP: Access Violation"},
  {"CURLE_REMOTE_DISK_FULL", "Disk full or allocation exceeded"},
  {"CURLE_TFTP_ILLEGAL", "TFTP: Illegal operation"},
  {"CURLE_TFTP_UNKNOWNID", "TFTP: Unknown transfer ID"},
  {"CURLE_REMOTE_FILE_EXISTS", "Remote file already exists"},
  {"CURLE_TFTP_NOSUCHUSER", "TFTP: No such user"},
  {"CURLE_OBSOLETE75", "Unknown error"},
  {"CURLE_OBSOLETE76", "Unknown error"},
  {"CURLE_SSL_CACERT_BADFILE", "Problem with the SSL CA cert (path? access rights?)"},
  {"CURLE_REMOTE_FILE_NOT_FOUND", "Remote file not found"},
  {"CURLE_SSH", "Error in the SSH layer"},
  {"CURLE_SSL_SHUTDOWN_FAILED", "Failed to shut down the SSL connection"},
  {"CURLE_AGAIN", "Socket not ready for send/recv"},
  {"CURLE_SSL_CRL_BADFILE", "Failed to load CRL file (path? access rights?, format?)"},
  {"CURLE_SSL_ISSUER_ERROR", "Issuer check against peer certificate failed"},
  {"CURLE_FTP_PRET_FAILED", "FTP: The server did not accept the PRET command."},
  {"CURLE_RTSP_CSEQ_ERROR", "RTSP CSeq mismatch or invalid CSeq"},
  {"CURLE_RTSP_SESSION_ERROR", "RTSP session error"},
  {"CURLE_FTP_BAD_FILE_LIST", "Unable to parse FTP file list"},
  {"CURLE_CHUNK_FAILED", "Chunk callback failed"},
  {"CURLE_NO_CONNECTION_AVAILABLE", "The max connection limit is reached"},
  {"CURLE_SSL_PINNEDPUBKEYNOTMATCH", "SSL public key does not match pinned public key"},
  {"CURLE_SSL_INVALIDCERTSTATUS", "SSL server certificate status verification FAILED"},
  {"CURLE_HTTP2_STREAM", "Stream error in the HTTP/2 framing layer"},
  {"CURLE_RECURSIVE_API_CALL", "API function called from within callback"},
  {"CURLE_AUTH_ERROR", "An authentication function returned an error"},
  {"CURLE_HTTP3", "HTTP/3 error"},
  {"CURLE_QUIC_CONNECT_ERROR", "QUIC connection error"},
  {"CURLE_PROXY", "proxy handshake error"},
  {"CURLE_SSL_CLIENTCERT", "SSL Client Certificate required"},
  {"CURLE_UNRECOVERABLE_POLL", "Unrecoverable error in select/poll"},
};
#define NCURL (sizeof(curl_codes) / sizeof(curl_codes[0]))

int
sl_err_curl(int curlcode)
{
  if (curlcode <= 0)
    return SL_OK;
  if (curlcode > SL_ECURL_BASE - SL_ECURL_LAST)
    return SL_EINTERNAL;
  return SL_ECURL_BASE - curlcode;
}

static int
is_curl(int err)
{
  return err < SL_ECURL_BASE && err >= SL_ECURL_LAST;
}

/* libuv's own codes that are not -errno on this system (getaddrinfo's
 * UV_EAI_*, UV_ECHARSET...): 1 and the code's name/text, else 0. */
static int
uv_only(int err, const char **name, const char **msg)
{
#define XX(code, text)                                                     \
  if (err == UV_##code) {                                                  \
    *name = "UV_" #code;                                                   \
    *msg = text;                                                           \
    return 1;                                                              \
  }
  UV_ERRNO_MAP(XX)
#undef XX
  return 0;
}

/* errno's symbolic name ("EACCES"), or NULL for a number libc does not
 * know. */
static const char *
errno_name(int e)
{
#ifdef HAVE_STRERRORNAME_NP
  return e > 0 ? strerrorname_np(e) : NULL;
#else
  (void)e;
  return NULL;
#endif
}

const char *
sl_strerror(int err)
{
  const char *name, *msg;

  switch (err) {
#define XX(name, val, msg) case SL_##name: return msg;
    SL_ERR_MAP(XX)
#undef XX
  default:
    break;
  }
  if (is_curl(err))
    return (size_t)(SL_ECURL_BASE - err) < NCURL
               ? curl_codes[SL_ECURL_BASE - err].msg : "libcurl error";
  if (err < 0 && errno_name(-err) != NULL)
    return strerror(-err);
  if (err < 0 && uv_only(err, &name, &msg))
    return msg;
  if (err < 0 && err > -4000)
    return strerror(-err);
  return "unknown error";
}

const char *
sl_errname(int err)
{
  const char *name, *msg;

  switch (err) {
#define XX(name, val, msg) case SL_##name: return "SL_" #name;
    SL_ERR_MAP(XX)
#undef XX
  default:
    break;
  }
  if (is_curl(err))
    return (size_t)(SL_ECURL_BASE - err) < NCURL
               ? curl_codes[SL_ECURL_BASE - err].name : "CURLE_?";
  if (err < 0 && (name = errno_name(-err)) != NULL)
    return name;
  if (err < 0 && uv_only(err, &name, &msg))
    return name;
  return "SL_E?";
}
