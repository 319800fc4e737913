"""Codes of resumable uploads (E90xx): the tus 1.0.0 protocol as served at /api/v1/uploads/ (interfaces.md §3),
the checks made at creation before any byte arrives (park, type, size: interfaces.md §7) and the hand-off to
loading (R-8.4.2.2). The HTTP statuses are tus's own where tus names one (409, 410, 412, 413, 460): tus clients
read the status, people read the message."""

from apps.core.errors import define

# --- the protocol --------------------------------------------------------------------------------------------
E9001 = define("E9001", 412, "不支持的 tus 协议版本 {version}。请发送请求头 Tus-Resumable: 1.0.0。",
               "The tus protocol version {version} is not supported. Send the header Tus-Resumable: 1.0.0.",
               "interfaces.md §3")
E9002 = define("E9002", 400, "请求头 {header} 无效：{detail}。", "The header {header} is invalid: {detail}.",
               "interfaces.md §3")
E9003 = define("E9003", 413, "文件过大：{length} 字节，上限 {limit} 字节。请拆分文件后分别上传。",
               "The file is too large: {length} bytes, limit {limit} bytes. Split it and upload the parts as "
               "separate files.", "interfaces.md §7")
E9004 = define("E9004", 400, "Upload-Metadata 无效：{detail}。格式为逗号分隔的“键 Base64值”，"
               "值须为不含 NUL 的 UTF-8 文字。",
               "Upload-Metadata is invalid: {detail}. It is a comma-separated list of 'key base64value'; values "
               "must be UTF-8 text without NUL.", "interfaces.md §3")
E9005 = define("E9005", 400, "Upload-Metadata 缺少文件名（filename）。",
               "Upload-Metadata lacks the file name (filename).",
               "interfaces.md §3")
E9006 = define("E9006", 400, "不接受文件 {name}：文件名应以 .csv、.xml 或 .xlsx 结尾，可再加 .gz 或 .zip，最后可加 .enc"
               "（规范 §7）。",
               "The file {name} is not accepted: its name must end in .csv, .xml or .xlsx, optionally followed by "
               ".gz or .zip, then optionally .enc (interfaces.md §7).", "R-7.2.1")
E9007 = define("E9007", 403, "园区 {park} 不存在或您无权向其上传数据。",
               "The park {park} does not exist or you may not push data to it.", "R-7.1.2")
E9008 = define("E9008", 400, "文件名 {name} 属于园区 {file_park}，而上传的目标园区是 {park}。",
               "The file name {name} belongs to park {file_park}, but the upload is for park {park}.", "R-7.2.1")
E9009 = define("E9009", 400, "请在 Upload-Metadata 中用 park 指明园区编码：您可以向多个园区上传。",
               "Name the park code as 'park' in Upload-Metadata: you may upload to more than one park.",
               "R-7.1.2")
E9010 = define("E9010", 400, "Upload-Metadata 中的 md5 应为整个文件的 MD5（32 位十六进制）。",
               "The md5 in Upload-Metadata must be the whole file's MD5 (32 hexadecimal digits).", "R-8.4.2.2")
E9011 = define("E9011", 404, "上传 {id} 不存在或无权访问。", "Upload {id} does not exist or is not yours to see.",
               "interfaces.md §3")
E9012 = define("E9012", 410, "上传 {id} 已过期或已删除，已收到的部分不再保留。请重新上传该文件。",
               "Upload {id} has expired or was deleted; the bytes received are no longer kept. Upload the file "
               "again.", "interfaces.md §3")
E9013 = define("E9013", 409, "偏移量不符：平台已收到 {offset} 字节，请求的 Upload-Offset 为 {sent}。"
               "请用 HEAD 查询后从 {offset} 继续。",
               "Offset mismatch: the platform holds {offset} bytes; the request's Upload-Offset is {sent}. HEAD the "
               "upload and continue from {offset}.", "R-8.4.2.2")
E9014 = define("E9014", 415, "内容类型应为 application/offset+octet-stream，收到的是 {content_type}。",
               "The content type must be application/offset+octet-stream; got {content_type}.", "interfaces.md §3")
E9015 = define("E9015", 409, "该上传正在接收另一个请求的数据。请稍后用 HEAD 查询偏移量再继续。",
               "This upload is receiving another request's bytes. HEAD it in a moment and continue from its "
               "offset.", "interfaces.md §3")
E9016 = define("E9016", 460, "数据块校验失败（{algorithm}）：该数据块未保存，偏移量仍为 {offset}。请重发该数据块。",
               "The chunk's checksum ({algorithm}) does not match: nothing of the chunk was kept; the offset stays "
               "{offset}. Send the chunk again.", "interfaces.md §3")
E9017 = define("E9017", 400, "Upload-Checksum 无效：{detail}。支持的算法：{algorithms}。",
               "Upload-Checksum is invalid: {detail}. Supported algorithms: {algorithms}.", "interfaces.md §3")
E9018 = define("E9018", 413, "数据超出声明的文件长度 {length} 字节。", "The bytes run past the declared length of "
               "{length} bytes.", "interfaces.md §3")
E9020 = define("E9020", 403, "合并后的上传（Upload-Concat: final）不能再追加数据。",
               "A final (concatenated) upload takes no more bytes.", "interfaces.md §3")
E9021 = define("E9021", 400, "Upload-Concat 无效：{detail}。", "Upload-Concat is invalid: {detail}.",
               "interfaces.md §3")
E9022 = define("E9022", 409, "上传 {id} 处于“{state}”状态，不能{what}。",
               "Upload {id} is {state}; it cannot {what}.", "interfaces.md §3")

E9023 = define("E9023", 404, "上传 {id} 没有{fmt}格式的拒收报告（尚未载入，或载入未产生报告）。",
               "Upload {id} has no rejection report as {fmt} (not loaded yet, or its load made none).",
               "interfaces.md §3")

# --- after the last byte: verification and loading ----------------------------------------------------------
E9030 = define("E9030", 400, "整个文件的 MD5 为 {got}，与声明的 {declared} 不符：文件未载入。请重新上传。",
               "The whole file's MD5 is {got}, not the declared {declared}: nothing was loaded. Upload the file "
               "again.", "R-8.4.2.2")
E9031 = define("E9031", 503, "文件已完整收到，但平台尚未安装文件载入程序：未载入任何数据，文件已保留。",
               "The file was received whole, but the platform's file loader is not installed yet: nothing was "
               "loaded; the file is kept.", "R-7.2.3")
E9032 = define("E9032", 500, "载入文件时发生内部错误：未载入任何数据。错误已记录，请将上传编号告知平台运维。",
               "Loading the file failed with an internal error: nothing was loaded. It has been logged; give the "
               "upload's id to the platform's operator.", "R-7.2.3")
E9033 = define("E9033", 400, "文件已收到，但其内容无法读取：{detail}。", "The file was received, but its content "
               "cannot be read: {detail}.", "R-7.2.3")
