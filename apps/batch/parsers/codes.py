"""The batch file codes' texts (E91xx), kept here so the parsers stay free of Django (ARCHITECTURE.md rule 2)
and say what went wrong in Chinese and English on their own (a command-line check before sending, R-7.2.2).
``apps/batch/errors.py`` registers each code with these texts; nothing else defines them.

E910x–E913x: the file as a whole (nothing of it is stored); E915x–E916x: one row (the row is rejected, the
rest of the file is loaded). interfaces.md §7."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # --- the file as a whole ------------------------------------------------------------------------------
    "E9101": ("文件名 {name} 不符合命名规则 {{园区编码}}_{{类别}}_{{期间}}_{{yyyyMMddHHmmss}}_{{序号}}.{{csv|xml|xlsx}}"
              "[.gz|.zip][.enc]：{detail_zh}。例：JSTZ01_CS_202611_20261201083000_001.csv.gz。",
              "The file name {name} does not follow {{parkCode}}_{{category}}_{{period}}_{{yyyyMMddHHmmss}}_{{seq}}"
              ".{{csv|xml|xlsx}}[.gz|.zip][.enc]: {detail}. Example: JSTZ01_CS_202611_20261201083000_001.csv.gz."),
    "E9102": ("文件属于园区 {found}（{where_zh}），但上传到了园区 {expected}。文件只能载入其所属园区。",
              "The file belongs to park {found} ({where}), but it was uploaded to park {expected}. A file loads "
              "only into its own park."),
    "E9103": ("文件格式无法识别：{detail_zh}。支持 CSV、XML、XLSX（可 gzip 或 zip 压缩，可加密）。",
              "The file's format is not recognised: {detail}. CSV, XML and XLSX are accepted (optionally gzip or "
              "zip compressed, optionally encrypted)."),
    "E9104": ("文件编码无法识别：既不是 UTF-8（可带 BOM），也不是 GB18030（第 {offset} 字节起无法解码）。"
              "请另存为 UTF-8 CSV。",
              "The file's encoding is not recognised: neither UTF-8 (with or without BOM) nor GB18030 (bytes from "
              "offset {offset} cannot be decoded). Save it as CSV UTF-8."),
    "E9105": ("表头不正确：{detail_zh}。表头应为 sourceId,dataCode,timestamp,value,unit,status[,backfill]。",
              "The header is wrong: {detail}. It must be sourceId,dataCode,timestamp,value,unit,status[,backfill]."),
    "E9106": ("第 {row} 行的元数据格式错误：应为 “# 键: 值”（park、period、producer、createdAt、records）。",
              "The metadata row {row} is malformed: it must read '# key: value' (park, period, producer, "
              "createdAt, records)."),
    "E9107": ("元数据 records 声明了 {declared} 条记录，文件中有 {found} 条数据行。文件可能不完整，未载入任何数据。",
              "The metadata declare records = {declared}, the file holds {found} data rows. The file may be "
              "incomplete; nothing of it was stored."),
    "E9108": ("元数据 records 的值 {value} 不是非负整数。", "The metadata value records = {value} is not a "
              "non-negative whole number."),
    "E9109": ("XML 文件含有 DOCTYPE（文档类型定义）。出于安全原因不处理 DTD 和实体，请删除 DOCTYPE 后重新上传。",
              "The XML file has a DOCTYPE (document type definition). DTDs and entities are never processed, "
              "for safety: remove the DOCTYPE and upload again."),
    "E9110": ("XML 格式错误（第 {line} 行）：{detail}。", "The XML is malformed (line {line}): {detail}."),
    "E9111": ("XML 结构不符（第 {line} 行）：{detail_zh}。应为 <batch park=.. period=.. records=..> 下的 "
              "<record .../> 元素。",
              "The XML structure is wrong (line {line}): {detail}. Expected <record .../> elements inside "
              "<batch park=.. period=.. records=..>."),
    "E9112": ("无法读取 XLSX 工作簿：{detail}。请用 Excel 另存为 .xlsx 后重试。",
              "The XLSX workbook cannot be read: {detail}. Save it again as .xlsx from Excel and retry."),
    "E9113": ("工作表含有合并单元格（{ranges}）。每个单元格只能有一个值，请取消合并后重新上传。",
              "The sheet has merged cells ({ranges}). Every cell must hold its own value: unmerge them and upload "
              "again."),
    "E9114": ("解压后超过 {limit_mb} MB 的上限，未载入。请拆分为多个文件。",
              "Decompressed, the file is over the limit of {limit_mb} MB; nothing was stored. Split it into "
              "several files."),
    "E9115": ("压缩比超过 {ratio}:1 的上限（疑似压缩炸弹），未载入。",
              "The compression ratio is over the limit of {ratio}:1 (a suspected decompression bomb); nothing was "
              "stored."),
    "E9116": ("zip 文件应只包含一个 CSV、XML 或 XLSX 文件，实际为：{members}。",
              "A zip file must hold exactly one CSV, XML or XLSX file; it holds: {members}."),
    "E9117": ("压缩文件已损坏，无法解压：{detail}。", "The compressed file is damaged and cannot be decompressed: "
              "{detail}."),
    "E9118": ("加密文件格式错误：{detail}。格式为 CPE1 信封，内容类型 0x03（文件）。",
              "The encrypted file is malformed: {detail}. It must be a CPE1 envelope with content type 0x03 "
              "(file)."),
    "E9119": ("加密文件的密钥 {key_id} 不是本园区有效的文件密钥。请用园区当前的文件密钥加密。",
              "The encrypted file's key {key_id} is not a valid file key of this park. Encrypt it with the park's "
              "current file key."),
    "E9120": ("加密文件解密失败：密钥错误、文件被改动，或加密时使用的上传编号不同。",
              "The encrypted file cannot be decrypted: wrong key, altered bytes, or sealed for another upload id."),
    "E9121": ("文件为空或没有表头行。", "The file is empty or has no header row."),
    "E9122": ("文件大小 {size_mb} MB 超过 {limit_mb} MB 的上限，未载入。",
              "The file is {size_mb} MB, over the limit of {limit_mb} MB; nothing was stored."),
    "E9123": ("CSV 在第 {line} 行无法读取：{detail}。", "The CSV cannot be read at line {line}: {detail}."),
    "E9124": ("元数据 {key} 为 {found}，与文件名中的 {expected} 不一致。",
              "The metadata give {key} = {found}, but the file name says {expected}."),
    "E9125": ("文件 {name} 读取时出错（{detail}），未载入任何数据。请联系运维人员。",
              "The file {name} could not be processed ({detail}); nothing was stored. Contact the operators."),
    "E9126": ("载入被中断（进程退出），未存储任何数据。请重新上传或放回共享目录。",
              "The load was interrupted (its process ended); nothing was stored. Upload the file again or put it "
              "back into the shared folder."),
    "E9127": ("您无权向园区 {park} 载入数据文件。", "You may not load data files into park {park}."),
    "E9128": ("共享目录中的文件位置不符合 {{园区编码}}/{{类别}}/{{yyyy}}/{{MM}}/ 结构：{detail_zh}。",
              "The file's place in the shared folder does not follow {{parkCode}}/{{category}}/{{yyyy}}/{{MM}}/: "
              "{detail}."),
    # --- one row ----------------------------------------------------------------------------------------------
    "E9151": ("此行有 {found} 个单元格，表头有 {expected} 列。", "This row has {found} cells; the header has "
              "{expected} columns."),
    "E9152": ("单元格 {cell} 含有公式，不接受公式：请粘贴为数值。", "Cell {cell} holds a formula; formulas are not "
              "accepted: paste the values instead."),
    "E9153": ("单元格含有 NUL 字符（\\0）。", "The cell holds a NUL character (\\0)."),
    "E9154": ("record 元素的属性 {attribute} 不是记录字段（sourceId、dataCode、timestamp、value、unit、status、"
              "backfill）。",
              "The attribute {attribute} of the record element is not a record field (sourceId, dataCode, "
              "timestamp, value, unit, status, backfill)."),
    "E9155": ("单元格 {cell} 是错误值 {value}（如 #DIV/0!）。", "Cell {cell} holds the error value {value} (such as "
              "#DIV/0!)."),
}
