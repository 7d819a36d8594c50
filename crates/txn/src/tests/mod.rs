mod harness;
mod records;
mod sim;
mod txn;
