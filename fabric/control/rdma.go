package control

// RDMAResponder is the sub-host side of RDMA, plugged into a Server by the
// rdma package. Connect is called on an authenticated connection that has
// its region open, with the client's queue pairs; it returns the server's
// (carrying the rkey, address and length of the registered region). The
// server calls Disconnect with those when the client asks or the connection
// ends. Without a responder the server answers fabric.ErrNoRDMA.
type RDMAResponder interface {
	Connect(vm string, region Region, client RDMAParams) (RDMAParams, error)
	Disconnect(vm string, server RDMAParams) error
}
