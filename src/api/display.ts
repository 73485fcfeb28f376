/**
 * `qb.display`: showing things in a notebook — `show` any value (tables, charts, tensors,
 * models draw themselves), progress bars, tables from your own rows.
 */
export { display as show, clearOutput as clear, type DisplayOptions } from "../display/sink";
export { displayProgress as progress } from "../display/progress";
export { setDefaultProgress, type Progress, type ProgressCallback } from "../util/progress";
export { toDataFrame, makeTable, makeReport, type Table, type Report, type DataFrame } from "../util/table";
export { DISPLAY, type MimeBundle, type Displayable } from "../util/display";
export { InterruptedError } from "../util/interrupt";
