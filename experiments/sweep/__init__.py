"""Running a sweep: the runner, the unit of work for one group of points, the executors, the record
store and the compile counters. It knows an experiment only as a module handed to it."""
