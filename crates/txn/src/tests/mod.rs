mod harness;
mod records;
mod txn;
